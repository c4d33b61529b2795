// Package changefeed tells a process of the changes that other processes
// committed, so that its result cache drops what they made stale.
//
// One concept a file:
//
//	notify.go    the channel, its payload (one table a notification), and
//	             the statement triggers that publish every writer's changes
//	listener.go  a connection that LISTENs, reconnects, and says when it is
//	             up and when it is down
//
// What it guarantees: a notification is delivered at the commit of the
// transaction that sent it, once a transaction (PostgreSQL folds identical
// ones); a Listener reports Up only once its LISTEN is in place, so that a
// change committed after Up is received, and Down as soon as its
// connection fails, since a change may then be missed.
package changefeed
