// Package consumertest holds tests that use auditpg the way another module
// does: through a require and the go command, with the module graph a
// consumer may have. It has no code of its own.
package consumertest
