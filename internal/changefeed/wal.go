package changefeed

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// Publication is the publication a leader streams with pgoutput: FOR ALL
// TABLES, created by the first leader if it is missing. One of some
// tables would leave the others' writes unheard by every cache, so a
// publication of that name that does not publish every table and every
// kind of change is refused.
const Publication = "auditpg_invalidate"

// SlotPrefix begins the name of every replication slot a leader creates.
// Its slots are temporary (dropped when the leader's replication
// connection ends), so none retains WAL after the leader is gone.
const SlotPrefix = "auditpg_"

// Heartbeat is the payload the leader sends on Channel every
// HeartbeatInterval while its slot streams. A Listener never hands it to
// Changed; one with Heartbeat set is Up only while heartbeats arrive. It
// names no table a process could cache (Payload("pg_catalog",
// "auditpg_heartbeat")), so that a listener that does not know it
// invalidates nothing that matters.
const Heartbeat = `"pg_catalog"."auditpg_heartbeat"`

// HeartbeatInterval is the time between a leader's heartbeats;
// HeartbeatTimeout how long a Listener waits for one before it reports
// Down: the longest a process serves its cache without proof that the
// changes of every writer reach it.
const (
	HeartbeatInterval = 200 * time.Millisecond
	HeartbeatTimeout  = 2 * time.Second
)

// standbyEvery is the longest time between two status updates the leader
// sends the server (it sends one after each batch it published, and when
// the server asks): well within the default wal_sender_timeout of 60s.
const standbyEvery = 10 * time.Second

// maxDecodeLag, the default of Leader.MaxLag, is how far behind the commits it decodes (the server's
// time of sending against the transaction's commit time) the leader may
// fall before it stops its heartbeats: the processes then bypass their
// caches until it has caught up, rather than serve what a change still in
// the stream made stale.
const maxDecodeLag = time.Second

// ackPoll is how often the decoding loop looks, while a batch it handed
// on is being published, whether it may acknowledge it.
const ackPoll = 5 * time.Millisecond

// WALLevelError is the error of a leader whose server does not run with
// wal_level = logical: no slot can be created.
type WALLevelError struct{ Level string }

func (e *WALLevelError) Error() string {
	return fmt.Sprintf("auditpg_invalidate=wal needs the server's wal_level = logical, and it is %s: as a superuser, run "+
		"ALTER SYSTEM SET wal_level = logical and restart the server (or use auditpg_invalidate=notify with the triggers of "+
		"auditpg cache install-triggers); until then, reads bypass the result cache", e.Level)
}

// stream is one leadership's stream: it checks the server, makes sure of
// the publication, creates a temporary slot on a replication connection of
// its own, publishes All (what committed before the slot existed was
// decoded by nobody), then decodes until a connection fails or ctx ends.
// conn is the leader's connection, which holds the lock.
func (l *Leader) stream(ctx context.Context, conn *pgconn.PgConn) error {
	level, err := queryValue(ctx, conn, `SELECT current_setting('wal_level')`)
	if err != nil {
		return fmt.Errorf("changefeed: read wal_level: %w", err)
	}
	if level != "logical" {
		return &WALLevelError{Level: level}
	}
	if err := ensurePublication(ctx, conn); err != nil {
		return err
	}

	rcfg := named(l.Config, StreamName)
	rcfg.RuntimeParams["replication"] = "database"
	// A receive deadline must interrupt the wait only.
	rcfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	rconn, err := pgconn.ConnectConfig(ctx, rcfg)
	if err != nil {
		return replicationError("open the replication connection", err)
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.Background(), time.Second)
		rconn.Close(closing) // the temporary slot goes with it
		cancel()
	}()
	slot := fmt.Sprintf("%s%016x", SlotPrefix, rand.Uint64())
	created, err := pglogrepl.CreateReplicationSlot(ctx, rconn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary: true, SnapshotAction: "NOEXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return replicationError("create a temporary replication slot", err)
	}
	start, err := pglogrepl.ParseLSN(created.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("changefeed: the slot's consistent point: %w", err)
	}
	// Changes committed before the consistent point are in no stream.
	l.takeovers.Add(1)
	if err := notifyBatch(ctx, conn, []string{All, Heartbeat}); err != nil {
		return fmt.Errorf("changefeed: publish the takeover: %w", err)
	}
	err = pglogrepl.StartReplication(ctx, rconn, slot, start, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(Publication)},
	})
	if err != nil {
		return replicationError("start streaming", err)
	}
	if l.Streaming != nil {
		l.Streaming(slot)
	}

	// conn is used with ctx only: the session's end, cancelled in the
	// middle of a statement, would close it and release the lock.
	s := &walSession{l: l, conn: conn, connCtx: ctx, rels: map[uint32]*relation{}, wake: make(chan struct{}, 1)}
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var sender sync.WaitGroup
	sender.Add(1)
	go func() { defer sender.Done(); s.send(sctx, cancel) }()
	err = s.decode(sctx, rconn)
	cancel(err)
	sender.Wait()
	return err
}

// ensurePublication creates Publication if it is missing, and refuses one
// that does not publish every change of every table.
func ensurePublication(ctx context.Context, conn *pgconn.PgConn) error {
	res := conn.ExecParams(ctx, `SELECT puballtables AND pubinsert AND pubupdate AND pubdelete AND pubtruncate
  FROM pg_publication WHERE pubname = $1`, [][]byte{[]byte(Publication)}, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("changefeed: read the publication %s: %w", Publication, res.Err)
	}
	if len(res.Rows) == 1 {
		if string(res.Rows[0][0]) != "t" {
			return fmt.Errorf("changefeed: the publication %s does not publish every change (insert, update, delete, truncate) of every table, "+
				"so some writes would reach no cache: as a superuser, run DROP PUBLICATION %s; the next leader creates it FOR ALL TABLES",
				Publication, Publication)
		}
		return nil
	}
	if err := checkReplicaIdentity(ctx, conn); err != nil {
		return err
	}
	_, err := conn.Exec(ctx, `CREATE PUBLICATION `+pgx.Identifier{Publication}.Sanitize()+` FOR ALL TABLES`).ReadAll()
	var pe *pgconn.PgError
	switch {
	case err == nil, errors.As(err, &pe) && pe.Code == "42710": // created meanwhile
		return nil
	case errors.As(err, &pe) && pe.Code == "42501":
		return fmt.Errorf("changefeed: the publication %s is missing and this user may not create it (FOR ALL TABLES needs a superuser): "+
			"as a superuser, run CREATE PUBLICATION %s FOR ALL TABLES: %w", Publication, Publication, err)
	}
	return fmt.Errorf("changefeed: create the publication %s: %w", Publication, err)
}

// checkReplicaIdentity refuses to create the publication while a table
// has no replica identity: PostgreSQL refuses UPDATE and DELETE on such a
// table once a publication of every table publishes them, which would
// break the application's writes.
func checkReplicaIdentity(ctx context.Context, conn *pgconn.PgConn) error {
	res := conn.ExecParams(ctx, `SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND c.relpersistence = 'p'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
   AND (c.relreplident = 'n'
        OR c.relreplident = 'd' AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
        OR c.relreplident = 'i' AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
 ORDER BY 1 LIMIT 11`, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return fmt.Errorf("changefeed: list the tables without a replica identity: %w", res.Err)
	}
	if len(res.Rows) == 0 {
		return nil
	}
	var names []string
	for i, row := range res.Rows {
		if i == 10 {
			names = append(names, "...")
			break
		}
		names = append(names, string(row[0]))
	}
	return fmt.Errorf("changefeed: the publication %s FOR ALL TABLES is not created: PostgreSQL would then refuse UPDATE and DELETE on the tables "+
		"without a replica identity (%s): give each a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL, then the leader creates it",
		Publication, strings.Join(names, ", "))
}

// replicationError says what to do about the common refusals of the
// replication protocol.
func replicationError(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42501", "28000":
			return fmt.Errorf("changefeed: %s: the user may not stream the WAL: grant it with ALTER ROLE ... REPLICATION (and let pg_hba.conf "+
				"admit its connections to the database), or use auditpg_invalidate=notify: %w", what, err)
		case "53400":
			return fmt.Errorf("changefeed: %s: the server has no free replication slot or WAL sender: raise max_replication_slots "+
				"and max_wal_senders (a restart), or drop unused slots (auditpg cache status, auditpg cache drop-slot): %w", what, err)
		case "55000":
			return fmt.Errorf("changefeed: %s: %w (auditpg_invalidate=wal needs wal_level = logical: as a superuser, run "+
				"ALTER SYSTEM SET wal_level = logical and restart the server)", what, err)
		}
	}
	return fmt.Errorf("changefeed: %s: %w", what, err)
}

// queryValue returns the one value of a query without parameters.
func queryValue(ctx context.Context, conn *pgconn.PgConn, sql string) (string, error) {
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return "", res.Err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return "", errors.New("changefeed: want one value")
	}
	return string(res.Rows[0][0]), nil
}

// walSession is the state of one stream: the relations pgoutput described
// and the payloads decoded and not yet published.
type walSession struct {
	l       *Leader
	mu      sync.Mutex     // guards conn: the decoding loop's lookups, the sender's batches
	conn    *pgconn.PgConn // the leader's connection
	connCtx context.Context
	rels    map[uint32]*relation

	pmu        sync.Mutex
	pending    map[string]uint64 // payload: the order of the last commit that wrote it
	seq        uint64
	pendingLSN pglogrepl.LSN // the end of the last transaction in pending
	xids       []int64       // the transactions of pending
	wake       chan struct{}
	published  atomic.Uint64 // the end of the last transaction published
	behind     atomic.Bool   // decoding lags more than maxDecodeLag: no heartbeat
}

// relation is what a change to a relation publishes: the table and, for a
// partition, every table above it (a read of the parent reads the
// partition's rows). Resolved is false when the ancestors could not be
// read: its changes then publish All.
type relation struct {
	schema, name string
	payloads     []string
	resolved     bool
}

// decode reads the stream until it fails or ctx ends, folds each
// transaction's tables, hands them to the sender at the commit, and
// acknowledges what was published.
func (s *walSession) decode(ctx context.Context, rconn *pgconn.PgConn) error {
	// ctx's end interrupts the read.
	stop := context.AfterFunc(ctx, func() { rconn.Conn().SetReadDeadline(time.Now()) })
	defer stop()
	var readDeadline time.Time
	var (
		acked, enqueued, idleUpTo pglogrepl.LSN
		inTxn, txnAll             bool
		xid                       uint32
		committed                 time.Time // the commit time of the transaction being decoded
		txn                       = map[string]struct{}{}
		nextStatus                = time.Now().Add(standbyEvery)
	)
	for {
		published := pglogrepl.LSN(s.published.Load())
		ack := published
		if enqueued <= published {
			// Everything received is published: what the server has sent
			// up to its last keepalive outside a transaction is done.
			ack = max(published, idleUpTo)
		}
		if ack > acked || !time.Now().Before(nextStatus) {
			acked = max(acked, ack)
			err := pglogrepl.SendStandbyStatusUpdate(ctx, rconn, pglogrepl.StandbyStatusUpdate{WALWritePosition: acked})
			if err != nil {
				return fmt.Errorf("changefeed: acknowledge the stream: %w", err)
			}
			nextStatus = time.Now().Add(standbyEvery)
		}
		deadline := nextStatus
		if enqueued > acked {
			deadline = time.Now().Add(ackPoll)
		}
		// The read deadline is set on the socket, only when it changes: a
		// context a message would cost a timer and two deadlines each.
		if !deadline.Equal(readDeadline) {
			if err := rconn.Conn().SetReadDeadline(deadline); err != nil {
				return fmt.Errorf("changefeed: the replication stream: %w", err)
			}
			readDeadline = deadline
			if ctx.Err() != nil { // ended before the deadline replaced the AfterFunc's
				return context.Cause(ctx)
			}
		}
		msg, err := rconn.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if isTimeout(err) && !rconn.IsClosed() {
				readDeadline = time.Time{} // an expired deadline is set again
				continue
			}
			return fmt.Errorf("changefeed: the replication stream failed: %w", err)
		}
		var data []byte
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			data = m.Data
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("changefeed: the replication stream failed: %w", pgconn.ErrorResponseToPgError(m))
		default:
			return fmt.Errorf("changefeed: the replication stream ended (%T)", msg)
		}
		if len(data) == 0 {
			continue
		}
		switch data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
			if err != nil {
				return fmt.Errorf("changefeed: a keepalive: %w", err)
			}
			if !inTxn {
				idleUpTo = max(idleUpTo, k.ServerWALEnd)
				s.behind.Store(false) // between transactions, with nothing more to send
			}
			if k.ReplyRequested {
				nextStatus = time.Time{}
			}
			continue
		case pglogrepl.XLogDataByteID:
		default:
			continue
		}
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("changefeed: WAL data: %w", err)
		}
		if inTxn {
			s.behind.Store(x.ServerTime.Sub(committed) > s.l.maxLag())
		}
		w := x.WALData
		if len(w) == 0 {
			continue
		}
		switch pglogrepl.MessageType(w[0]) {
		case pglogrepl.MessageTypeBegin:
			m, err := pglogrepl.Parse(w)
			if err != nil {
				return fmt.Errorf("changefeed: a begin message: %w", err)
			}
			begin := m.(*pglogrepl.BeginMessage)
			inTxn, txnAll, xid, committed = true, false, begin.Xid, begin.CommitTime
			s.behind.Store(x.ServerTime.Sub(committed) > s.l.maxLag())
			clear(txn)
		case pglogrepl.MessageTypeInsert, pglogrepl.MessageTypeUpdate, pglogrepl.MessageTypeDelete:
			// The relation's id follows the type (protocol 1, no
			// streaming); the row is not decoded: it is never used.
			if len(w) < 5 {
				return errors.New("changefeed: a change message too short for its relation")
			}
			s.l.changes.Add(1)
			txnAll = s.add(ctx, txn, binary.BigEndian.Uint32(w[1:5])) || txnAll
		case pglogrepl.MessageTypeTruncate:
			m, err := pglogrepl.Parse(w)
			if err != nil {
				return fmt.Errorf("changefeed: a truncate message: %w", err)
			}
			for _, id := range m.(*pglogrepl.TruncateMessage).RelationIDs {
				s.l.changes.Add(1)
				txnAll = s.add(ctx, txn, id) || txnAll
			}
		case pglogrepl.MessageTypeRelation:
			m, err := pglogrepl.Parse(w)
			if err != nil {
				return fmt.Errorf("changefeed: a relation message: %w", err)
			}
			r := m.(*pglogrepl.RelationMessage)
			rel := &relation{schema: r.Namespace, name: r.RelationName}
			s.resolve(ctx, r.RelationID, rel)
			s.rels[r.RelationID] = rel
		case pglogrepl.MessageTypeCommit:
			m, err := pglogrepl.Parse(w)
			if err != nil {
				return fmt.Errorf("changefeed: a commit message: %w", err)
			}
			end := m.(*pglogrepl.CommitMessage).TransactionEndLSN
			inTxn = false
			if txnAll || len(txn) > 0 {
				s.l.commits.Add(1)
				s.enqueue(txn, txnAll, xid, end)
				enqueued = end
			}
		}
	}
}

// add adds what a change to the relation id publishes to txn, and reports
// whether it must publish All instead: a relation pgoutput never
// described, one whose ancestors cannot be read, or too many tables.
func (s *walSession) add(ctx context.Context, txn map[string]struct{}, id uint32) (all bool) {
	rel := s.rels[id]
	if rel == nil {
		return true
	}
	if !rel.resolved && !s.resolve(ctx, id, rel) {
		return true
	}
	for _, p := range rel.payloads {
		txn[p] = struct{}{}
	}
	return len(txn) > maxPending
}

// resolve reads the tables above a relation (a partition's, at any level)
// and sets what its changes publish.
func (s *walSession) resolve(ctx context.Context, id uint32, rel *relation) bool {
	s.mu.Lock()
	res := s.conn.ExecParams(s.connCtx, `SELECT n.nspname, c.relname
  FROM pg_partition_ancestors($1::oid::regclass) AS a(relid)
  JOIN pg_class c ON c.oid = a.relid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.relid <> $1::oid::regclass`, [][]byte{fmt.Appendf(nil, "%d", id)}, nil, nil, nil).Read()
	s.mu.Unlock()
	rel.payloads = append(rel.payloads[:0], Payload(rel.schema, rel.name))
	rel.resolved = res.Err == nil
	if !rel.resolved {
		return false
	}
	for _, row := range res.Rows {
		rel.payloads = append(rel.payloads, Payload(string(row[0]), string(row[1])))
	}
	return true
}

// enqueue hands a committed transaction's payloads to the sender.
func (s *walSession) enqueue(txn map[string]struct{}, all bool, xid uint32, end pglogrepl.LSN) {
	s.pmu.Lock()
	s.xids = append(s.xids, int64(xid))
	if s.pending == nil {
		s.pending = map[string]uint64{}
	}
	s.seq++
	if _, was := s.pending[All]; !was {
		if all {
			clear(s.pending)
			s.pending[All] = s.seq
		} else {
			for p := range txn {
				s.pending[p] = s.seq
			}
			if len(s.pending) > maxPending {
				clear(s.pending)
				s.pending[All] = s.seq
			}
		}
	}
	s.pendingLSN = end
	s.pmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns the pending payloads, their transactions and the end of
// the last, and forgets them.
func (s *walSession) take() ([]string, []int64, pglogrepl.LSN) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if len(s.pending) == 0 {
		return nil, nil, 0
	}
	xids := s.xids
	s.xids = nil
	batch := make([]string, 0, len(s.pending)+1)
	if _, all := s.pending[All]; all {
		batch = append(batch, All)
	} else {
		for p := range s.pending {
			batch = append(batch, p)
		}
		// In the order of the last commit that wrote each table: a
		// table's notification follows those of the commits before.
		slices.SortFunc(batch, func(a, b string) int { return cmp.Compare(s.pending[a], s.pending[b]) })
	}
	clear(s.pending)
	return batch, xids, s.pendingLSN
}

// send publishes what the decoding loop hands on, in batches (one
// transaction each, so one delivery), and a heartbeat every
// HeartbeatEvery, until ctx ends or a batch fails, which ends the session.
func (s *walSession) send(ctx context.Context, fail context.CancelCauseFunc) {
	beat := time.NewTicker(s.l.heartbeatEvery())
	defer beat.Stop()
	for {
		due := false
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-beat.C:
			due = true
		}
		batch, xids, end := s.take()
		var err error
		if len(batch) > 0 {
			err = s.notifyVisible(ctx, batch, xids)
		}
		if err == nil && due && !s.behind.Load() {
			s.mu.Lock()
			err = notifyBatch(s.connCtx, s.conn, []string{Heartbeat})
			s.mu.Unlock()
		}
		if err != nil {
			fail(fmt.Errorf("changefeed: publish the decoded changes: %w", err))
			return
		}
		if end > 0 {
			s.published.Store(uint64(end))
		}
	}
}

// visiblePoll is the pause between two attempts to publish a batch whose
// transactions are not yet visible.
const visiblePoll = 100 * time.Microsecond

// notifyVisible publishes batch once its transactions are visible to new
// snapshots. A commit is flushed to the WAL, so decoded, before it leaves
// the server's list of running transactions: a reader told of it sooner
// could still read, and cache, the rows it replaced. The check and the
// notifications are one statement: nothing is sent while one of xids
// (32-bit, given the epoch of the snapshot's xmax) is not visible to the
// statement's snapshot.
func (s *walSession) notifyVisible(ctx context.Context, batch []string, xids []int64) error {
	arr, err := pgtype.NewMap().Encode(pgtype.TextArrayOID, pgtype.TextFormatCode, batch, nil)
	if err != nil {
		return err
	}
	ids, err := pgtype.NewMap().Encode(pgtype.Int8ArrayOID, pgtype.TextFormatCode, xids, nil)
	if err != nil {
		return err
	}
	for {
		s.mu.Lock()
		res := s.conn.ExecParams(s.connCtx, `WITH m AS (SELECT s, pg_snapshot_xmax(s)::text::bigint AS xmax FROM pg_current_snapshot() AS s)
SELECT count(pg_notify($1, p)) FROM unnest($2::text[]) AS p, m
 WHERE NOT EXISTS (SELECT FROM unnest($3::bigint[]) AS x(xid)
                    WHERE NOT pg_visible_in_snapshot((((m.xmax >> 32) << 32) + x.xid
                          - CASE WHEN x.xid > (m.xmax & 4294967295) THEN 4294967296 ELSE 0 END)::text::xid8, m.s))`,
			[][]byte{[]byte(Channel), arr, ids}, nil, nil, nil).Read()
		s.mu.Unlock()
		if res.Err != nil {
			return res.Err
		}
		if len(res.Rows) == 1 && string(res.Rows[0][0]) != "0" {
			return nil
		}
		if !sleep(ctx, visiblePoll) {
			return ctx.Err()
		}
	}
}

// isTimeout reports whether err is a read deadline's.
func isTimeout(err error) bool {
	var ne net.Error
	return pgconn.Timeout(err) || errors.As(err, &ne) && ne.Timeout()
}
