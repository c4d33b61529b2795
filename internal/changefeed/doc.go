// Package changefeed tells a process of the changes that other processes
// committed, so that its result cache drops what they made stale.
//
// One concept a file:
//
//	notify.go    the channel, its payload (one table a notification), and
//	             the statement triggers that publish every writer's changes
//	listener.go  a connection that LISTENs, reconnects, and says when it is
//	             up and when it is down (with Heartbeat: while a WAL
//	             decoder's heartbeats arrive)
//	publisher.go this process's own writes, sent in batches
//	install.go   the triggers' plan, and the status an operator checks
//	             (the WAL decoder's slots included)
//	leader.go    the candidates to decode the WAL: one leads at a time,
//	             under a session advisory lock
//	wal.go       the leader's stream: a temporary slot, pgoutput's messages
//	             folded into each transaction's tables, published once the
//	             transaction is visible, acknowledged, and heartbeats
//
// What it guarantees: a notification is delivered at the commit of the
// transaction that sent it, once a transaction (PostgreSQL folds identical
// ones); a Listener reports Up only once its LISTEN is in place, so that a
// change committed after Up is received, and Down as soon as its
// connection fails, since a change may then be missed. With the WAL as the
// source, a change is published only once its transaction is visible to new
// snapshots, a new slot first publishes All (what committed before it was
// decoded by nobody), and the heartbeats stop while the leader is gone or
// lags, so that the processes bypass rather than serve what it missed.
package changefeed
