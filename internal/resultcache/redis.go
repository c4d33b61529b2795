package resultcache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/redis/go-redis/v9"
)

// The shared tier: entries in Redis, read after a miss of the process's
// own store and written after a fill, so that the processes of one
// application warm each other.
//
// Keys, under the application's prefix P (the encoding's version is part
// of every key, so that two builds that encode differently never meet):
//
//	P:1:v          the global version, moved by an invalidation of everything
//	P:1:v:<table>  the version of a table (unqualified name)
//	P:1:e:<hash>   an entry: the in-process encoding, whose header holds the
//	               versions read when its fill started and its portable key
//
// A version is moved by every process that invalidates (for its own write,
// or on receipt from the change feed), with one INCR after the
// invalidation; a lookup reads the entry and the current versions in one
// round trip and serves the entry only when they are the ones it holds.
// ARCHITECTURE.md ("The shared Redis tier") gives the argument; what
// enforces it here:
//   - a process reads the tier for a table only once its INCRs of every
//     invalidation of that table it has made or received have succeeded
//     (generation.rsynced against generation.n), and serves a hit only if
//     no invalidation reached it while the round trip ran;
//   - a version key that is absent (never made, evicted, expired, lost) is
//     made at a random value, never one it may have held before, so that
//     versions never repeat (INCR of an absent key would restart at 1):
//     the entries under the old one are misses;
//   - after a failure of Redis (the breaker opened) the process moves the
//     global version before it reads the tier again: an INCR it sent may
//     have been lost (a restart, a failover);
//   - a process whose change feed comes up reads the tier only once a
//     covering process acknowledged its barrier, or after it moved the
//     global version (see feedUp).

// RedisConfig configures the shared tier.
type RedisConfig struct {
	Client redis.UniversalClient
	// Owned: Close closes the client (the driver made it from a URL).
	Owned bool
	// Prefix starts every key (default DefaultRedisPrefix).
	Prefix string
	// Timeout bounds every call on the query path (default
	// DefaultRedisTimeout); writes, made in the background, get
	// redisWriteBudget times it.
	Timeout time.Duration
	// Addr says which Redis, for the statistics: never a password.
	Addr string
	// Always consults the tier for every fingerprint, whatever it costs
	// (for tests of the tier with cheap queries).
	Always bool
	// WorthFactor: a fingerprint is consulted when its misses cost this
	// many round trips (default DefaultWorthFactor).
	WorthFactor int
}

// Defaults of the shared tier.
const (
	DefaultRedisPrefix  = "auditpg"
	DefaultRedisTimeout = 5 * time.Millisecond
	MaxRedisTimeout     = time.Second
)

const (
	redisEncoding = ":1:" // the entry encoding's version, in every key
	// DefaultWorthFactor: the tier is consulted for a fingerprint when its
	// misses cost at least this many Redis round trips. A lookup costs its
	// round trip, the entry's transfer and its decoding, and a Redis miss
	// adds the round trip to the server's time.
	DefaultWorthFactor = 4
	// maxWorthFingerprints bounds the fingerprints measured; past it a new
	// fingerprint is not consulted.
	maxWorthFingerprints = 4096
	breakerThreshold     = 3 // consecutive failures that open the breaker
	breakerMinWait       = 100 * time.Millisecond
	breakerMaxWait       = 5 * time.Second
	redisWriteBudget     = 20 // a background write's timeout, in Timeouts
	redisQueue           = 1024
)

// bumpScript moves a version by one, or, when the key was absent, sets it
// to a random value (ARGV[1]): a version never returns to a value it had.
// It lives versionTTL (ARGV[2], ms) from its last move. One key: it runs
// on Redis Cluster too.
var bumpScript = redis.NewScript(`if redis.call('INCR', KEYS[1]) == 1 then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1`)

// ensureScript reads a version, or makes it at a random value (ARGV[1])
// when it is absent.
var ensureScript = redis.NewScript(`local v = redis.call('GET', KEYS[1])
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) v = ARGV[1] end return v`)

// versionTTL is a version key's life from its last move, past any entry's
// (MaxTTL): the versions of tables no longer written, or of names that
// were never tables, do not accumulate. One that expires is unknown, then
// made again at a random value: entries under it are misses, never wrong.
const versionTTL = 2 * MaxTTL

// rttEvery is how often the round trip is measured apart from lookups, so
// that a decision to skip is revisited against a current figure.
const rttEvery = 5 * time.Second

// portableTypes are the scan types pgx stdlib's rows report (and any, for
// other drivers'), registered first in every cache in this order, so that
// an entry's column section means the same in every process. An entry
// with another scan type is not written to Redis.
var portableTypes = []reflect.Type{
	reflect.TypeFor[any](), reflect.TypeFor[string](), reflect.TypeFor[int64](), reflect.TypeFor[int32](),
	reflect.TypeFor[int16](), reflect.TypeFor[float64](), reflect.TypeFor[float32](), reflect.TypeFor[bool](),
	reflect.TypeFor[time.Time](), reflect.TypeFor[[]byte](),
}

type redisTier struct {
	c       *Cache
	client  redis.UniversalClient
	owned   bool
	prefix  string // P + redisEncoding
	timeout time.Duration
	addr    string
	always  bool
	factor  int64

	brk breaker
	// resync is set when the breaker opens: the tier is not read until the
	// global version was moved.
	resync atomic.Bool

	// Coverage (see feedUp): id names this process in acknowledgements;
	// covering is set while every change this process hears has moved its
	// version, continuously since a point from which Redis's entries were
	// known sound; checking while a feed that came up asks whether
	// another process covered the time before it (the tier is not read).
	id        string
	covering  atomic.Bool
	checking  atomic.Bool
	feedEpoch atomic.Uint64 // moved at every FeedUp and FeedDown
	feedIsUp  atomic.Bool   // as the last of them said
	barriers  atomic.Uint64
	acks      []string // barriers heard, to acknowledge after the versions queued before them moved (bumpMu)

	bumpMu  sync.Mutex
	bumps   map[*generation]struct{} // versions to move
	wake    chan struct{}
	writes  chan redisWrite
	stop    chan struct{}
	workers sync.WaitGroup

	rtt   atomic.Int64 // round trip, ns: the median of rtts; 0 until measured
	rttMu sync.Mutex
	rtts  [16]int64 // the last round trips, a ring
	nrtt  int
	worth sync.Map // fingerprint -> *worthStat
	nfp   atomic.Int64

	stats redisCounters
}

type redisCounters struct {
	hits, misses, stale, skipped, unavailable, unknown atomic.Int64
	covered                                            atomic.Int64
	writes, dropped, bumps, errors, opens, resyncs     atomic.Int64
}

type redisWrite struct {
	key   string
	value []byte
	ttl   time.Duration // of the entry
}

// worthStat is a fingerprint's measured cost on the server, and the
// decision last taken on it. The cost is the median of its last misses:
// a statement's first run on each connection (prepared then) and a busy
// moment weigh nothing.
type worthStat struct {
	mu        sync.Mutex
	last      [worthSamples]int64 // ns, a ring
	n         int                 // samples taken
	median    atomic.Int64        // ns; 0 until worthMinSamples were taken
	consulted atomic.Bool
}

const (
	worthSamples    = 8
	worthMinSamples = 3
)

func (w *worthStat) add(d int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[w.n%worthSamples] = d
	w.n++
	k := min(w.n, worthSamples)
	if k < worthMinSamples {
		return
	}
	s := w.last
	slices.Sort(s[:k])
	w.median.Store(s[k/2])
}

func newRedisTier(c *Cache, cfg RedisConfig) *redisTier {
	r := &redisTier{
		c: c, client: cfg.Client, owned: cfg.Owned, addr: cfg.Addr, always: cfg.Always,
		prefix:  cmpOr(cfg.Prefix, DefaultRedisPrefix) + redisEncoding,
		timeout: cfg.Timeout,
		bumps:   map[*generation]struct{}{},
		wake:    make(chan struct{}, 1),
		writes:  make(chan redisWrite, redisQueue),
		stop:    make(chan struct{}),
		id:      strconv.FormatUint(rand.Uint64(), 36),
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	r.factor = int64(cfg.WorthFactor)
	if r.factor <= 0 {
		r.factor = DefaultWorthFactor
	}
	r.workers.Add(2)
	go r.bumper()
	go r.writer()
	return r
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *redisTier) close() error {
	close(r.stop)
	r.workers.Wait()
	if r.owned {
		return r.client.Close()
	}
	return nil
}

func (r *redisTier) versionKey(g *generation) string {
	if g.name == "" {
		return r.prefix + "v"
	}
	return r.prefix + "v:" + g.name
}

// ---- versions ----

// invalidated queues the moves of the versions of gens, made stale by an
// invalidation this process made or received.
func (r *redisTier) invalidated(gens ...*generation) {
	r.bumpMu.Lock()
	for _, g := range gens {
		r.bumps[g] = struct{}{}
	}
	r.bumpMu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// synced says whether every invalidation of gens (and the global
// generation) up to the generations seen, now, has moved its version in
// Redis.
func (r *redisTier) synced(tables []*generation, seen []uint64) bool {
	if r.c.global.rsynced.Load() < seen[0] {
		return false
	}
	for i, g := range tables {
		if g.rsynced.Load() < seen[i+1] {
			return false
		}
	}
	return true
}

// bumper moves the versions invalidations queued, and, after an outage,
// the global one first.
func (r *redisTier) bumper() {
	defer r.workers.Done()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	tick := time.NewTicker(rttEvery)
	defer tick.Stop()
	cover := time.NewTicker(coverEvery)
	defer cover.Stop()
	r.measure()
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-retry.C:
		case <-tick.C:
			if r.usable() {
				r.measure()
			}
			continue
		case <-cover.C:
			r.sayCovering()
			continue
		}
		if wait := r.brk.wait(time.Now()); wait > 0 {
			retry.Reset(wait)
			continue
		}
		if !r.flushBumps() {
			retry.Reset(r.brk.retryIn(time.Now()))
		}
	}
}

// measure takes a first round trip's time, so that the first fingerprints
// are judged against it.
func (r *redisTier) measure() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*r.timeout)
	defer cancel()
	if r.client.Ping(ctx).Err() != nil { // a connection made
		return
	}
	// The least of three: a PING waits for this goroutine to be scheduled
	// too, which a busy process delays.
	best := time.Duration(0)
	for range 3 {
		start := time.Now()
		if r.client.Ping(ctx).Err() != nil {
			return
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	r.observeRTT(best)
}

// flushBumps moves the queued versions in one pipeline and reports whether
// all moved.
func (r *redisTier) flushBumps() bool {
	epoch := r.feedEpoch.Load()
	r.bumpMu.Lock()
	gens := make([]*generation, 0, len(r.bumps))
	for g := range r.bumps {
		gens = append(gens, g)
	}
	clear(r.bumps)
	acks := r.acks
	r.acks = nil
	r.bumpMu.Unlock()
	resync := r.resync.Load()
	if resync {
		gens = append(gens, &r.c.global) // the global one, again if queued: cheap
	}
	if len(gens) == 0 && len(acks) == 0 {
		return true
	}
	seen := make([]uint64, len(gens)) // the invalidations each move covers
	for i, g := range gens {
		seen[i] = g.n.Load()
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisWriteBudget*r.timeout)
	defer cancel()
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(gens))
	for i, g := range gens {
		cmds[i] = bumpScript.Eval(ctx, pipe, []string{r.versionKey(g)}, randomVersion(), versionTTL.Milliseconds())
	}
	_, _ = pipe.Exec(ctx)
	ok, globalOK := true, false
	var failed []*generation
	for i, g := range gens {
		if err := cmds[i].Err(); err != nil {
			ok = false
			failed = append(failed, g)
			continue
		}
		r.stats.bumps.Add(1)
		raise(&g.rsynced, seen[i])
		if g == &r.c.global {
			globalOK = true
		}
	}
	if !ok {
		r.stats.errors.Add(1)
		r.fail()
		r.bumpMu.Lock() // kept for the next try, which the timer makes
		for _, g := range failed {
			r.bumps[g] = struct{}{}
		}
		r.bumpMu.Unlock()
		return false
	}
	r.brk.succeed()
	if resync && globalOK {
		// Every entry filled before is a miss: from here this process
		// covers, if its feed has been up since before the move.
		if r.feedEpoch.Load() == epoch && r.feedIsUp.Load() {
			r.covering.Store(true)
			r.checking.Store(false)
			defer r.sayCovering()
		}
		r.resync.Store(false)
		r.stats.resyncs.Add(1)
	}
	if len(acks) > 0 && r.covering.Load() && r.feedEpoch.Load() == epoch {
		// The versions of every change heard before these barriers moved.
		ctx, cancel := context.WithTimeout(context.Background(), redisWriteBudget*r.timeout)
		defer cancel()
		pipe := r.client.Pipeline()
		for _, b := range acks {
			pipe.SAdd(ctx, r.prefix+"ack:"+b, r.id)
			pipe.PExpire(ctx, r.prefix+"ack:"+b, ackTTL)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			r.stats.errors.Add(1)
		}
	}
	return true
}

func raise(a *atomic.Uint64, v uint64) {
	for {
		cur := a.Load()
		if cur >= v || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// randomVersion is where a version key starts: far from any value it held
// before (below 2^53, so that no INCR ever overflows).
func randomVersion() uint64 { return 1<<32 + rand.Uint64N(1<<53-1<<32) }

// fail counts a failure; past the threshold the breaker opens, and the
// tier is not read again until the global version moved.
func (r *redisTier) fail() {
	if r.brk.fail(time.Now()) {
		r.stats.opens.Add(1)
		r.covering.Store(false) // an INCR may have been lost
		r.resync.Store(true)
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// usable says whether the tier may be called on the query path.
func (r *redisTier) usable() bool { return !r.resync.Load() && r.brk.closed() && !r.checking.Load() }

// ---- coverage ----

// When its change feed comes up, a process has missed the changes committed
// before: Redis may hold entries they made stale, unless another process
// heard every one of them and moved its version. The process asks: it
// publishes a barrier on the feed, and a process that is covering (its
// feed up, and every version it had to move moved, continuously since a
// point where Redis was sound) acknowledges it in Redis once the versions
// of every change it heard before it (the feed delivers in commit order)
// have moved. One acknowledgement by another process and the tier is
// read; none within coverWait, and the global version is moved instead
// (every entry is then a miss). The first process of an application, and
// one whose feed was lost, move it; a second process started while others
// run does not, and finds their entries.

const (
	barrierPrefix = "auditpg_barrier_"
	coverWait     = 2 * time.Second
	ackTTL        = time.Minute
	// A covering process says so in P:1:covering, refreshed every
	// coverEvery to live coverTTL: a newcomer that finds it absent moves
	// the global version at once instead of waiting coverWait for an
	// acknowledgement no one would send. It is a hint: only an
	// acknowledgement makes a start covered.
	coverEvery = 300 * time.Millisecond
	coverTTL   = time.Second
)

// feedUp starts the check for a feed that came up, once the process's own
// generations were all moved (by FeedUp, without a move in Redis).
func (r *redisTier) feedUp() {
	r.feedIsUp.Store(true)
	epoch := r.feedEpoch.Add(1)
	r.covering.Store(false)
	r.checking.Store(true)
	moved := r.c.global.n.Load()
	r.workers.Add(1)
	go func() {
		defer r.workers.Done()
		r.checkCoverage(epoch, moved)
	}()
}

// feedDown: changes may be missed from now on.
func (r *redisTier) feedDown() {
	r.feedIsUp.Store(false)
	r.feedEpoch.Add(1)
	r.covering.Store(false)
}

// barrier handles a payload of the feed that names a barrier (reporting
// whether it does): acknowledged when this process is covering.
func (r *redisTier) barrier(table string) bool {
	if !strings.HasPrefix(table, barrierPrefix) {
		return false
	}
	if r.covering.Load() && !strings.HasPrefix(table, barrierPrefix+r.id+"_") {
		r.bumpMu.Lock()
		r.acks = append(r.acks, table)
		r.bumpMu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// othersCovering says whether a covering process may answer a barrier.
func (r *redisTier) othersCovering() bool {
	ctx, cancel := context.WithTimeout(context.Background(), redisWriteBudget*r.timeout)
	defer cancel()
	n, err := r.client.Exists(ctx, r.prefix+"covering").Result()
	return err != nil || n > 0 // on an error, the acknowledgement decides
}

// sayCovering refreshes the hint that this process covers.
func (r *redisTier) sayCovering() {
	if !r.covering.Load() || !r.usable() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisWriteBudget*r.timeout)
	defer cancel()
	if err := r.client.Set(ctx, r.prefix+"covering", r.id, coverTTL).Err(); err != nil {
		r.stats.errors.Add(1)
		r.fail()
	}
}

// checkCoverage asks for an acknowledgement of a barrier; moved is the
// global generation FeedUp moved to, which a covered start leaves as
// synced in Redis.
func (r *redisTier) checkCoverage(epoch, moved uint64) {
	name := barrierPrefix + r.id + "_" + strconv.FormatUint(r.barriers.Add(1), 10)
	if r.c.feed.publish != nil && r.brk.closed() && !r.resync.Load() && r.othersCovering() {
		r.c.feed.publish(changefeed.Payload("", name))
		key := r.prefix + "ack:" + name
		poll := time.NewTicker(5 * time.Millisecond)
		defer poll.Stop()
		for deadline := time.Now().Add(coverWait); time.Now().Before(deadline); {
			select {
			case <-r.stop:
				return
			case <-poll.C:
			}
			if r.feedEpoch.Load() != epoch {
				return // the feed went down, or came up again: that check decides
			}
			ctx, cancel := context.WithTimeout(context.Background(), redisWriteBudget*r.timeout)
			members, err := r.client.SMembers(ctx, key).Result()
			cancel()
			if err != nil {
				r.stats.errors.Add(1)
				r.fail()
				break
			}
			if slices.ContainsFunc(members, func(m string) bool { return m != r.id }) {
				if r.feedEpoch.Load() == epoch {
					raise(&r.c.global.rsynced, moved)
					r.covering.Store(true)
					r.checking.Store(false)
					r.stats.covered.Add(1)
					r.sayCovering()
				}
				return
			}
		}
	}
	if r.feedEpoch.Load() == epoch {
		r.resync.Store(true) // the global version moves before the tier is read
		r.checking.Store(false)
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// ---- worth ----

// worthIt says whether the tier is consulted for fingerprint fp: its
// misses cost at least factor round trips. A fingerprint not yet measured
// is not. The decision holds until the cost crosses a band around the
// threshold (half of it to stop, twice to start), so that a query whose
// cost is near it, on a busy machine, does not go back and forth.
func (r *redisTier) worthIt(fp string) bool {
	if r.always {
		return true
	}
	v, ok := r.worth.Load(fp)
	if !ok {
		return false
	}
	w := v.(*worthStat)
	mean, rtt := w.median.Load(), r.rtt.Load()
	if rtt <= 0 || mean == 0 {
		return false
	}
	thr := r.factor * rtt
	switch on := w.consulted.Load(); {
	case !on && mean >= 2*thr:
		w.consulted.Store(true)
		return true
	case on && mean < thr/2:
		w.consulted.Store(false)
		return false
	default:
		return on
	}
}

// observeMiss records what a miss of fp cost.
func (r *redisTier) observeMiss(fp string, d time.Duration) {
	v, ok := r.worth.Load(fp)
	if !ok {
		if r.nfp.Load() >= maxWorthFingerprints {
			return
		}
		var loaded bool
		if v, loaded = r.worth.LoadOrStore(fp, &worthStat{}); !loaded {
			r.nfp.Add(1)
		}
	}
	v.(*worthStat).add(int64(d))
}

// observeRTT takes a round trip: the figure is the median of the last 16,
// so that a stall of the process (a pause, a busy machine) does not turn
// the decisions on its own.
func (r *redisTier) observeRTT(d time.Duration) {
	r.rttMu.Lock()
	defer r.rttMu.Unlock()
	r.rtts[r.nrtt%len(r.rtts)] = int64(d)
	r.nrtt++
	k := min(r.nrtt, len(r.rtts))
	s := r.rtts
	slices.Sort(s[:k])
	r.rtt.Store(s[k/2])
}

// ---- lookups ----

// redisFill is what a fill needs to be written to Redis: the versions
// read when it started, and its portable key.
type redisFill struct {
	versions []uint64
	key      []byte
}

// portableKey is the key as every process writes it: the session's scope
// in full instead of this cache's number for it.
func portableKey(scope string, key []byte) []byte {
	_, n := binary.Uvarint(key)
	out := make([]byte, 0, len(scope)+len(key)+8)
	out = appendString(out, scope)
	return append(out, key[n:]...)
}

func (r *redisTier) entryKey(pkey []byte) string {
	sum := sha256.Sum256(pkey)
	return r.prefix + "e:" + hex.EncodeToString(sum[:16])
}

// lookup reads the entry of key and the current versions in one round
// trip. On a hit it stores the entry in the process's own tier (under
// the generations gens read before the round trip and the store key sk)
// and sets dst to replay it. On a miss it returns what the fill needs to
// be written, or nil when it must not be.
func (r *redisTier) lookup(ctx context.Context, s *Session, fp string, dst *Rows, hash keyHash, sk string,
	key []byte, tables []*generation, gens []uint64) (hit bool, rf *redisFill) {
	if !r.worthIt(fp) {
		r.stats.skipped.Add(1)
		return false, nil
	}
	if !r.usable() || !r.synced(tables, gens) {
		r.stats.unavailable.Add(1)
		return false, nil
	}
	pkey := portableKey(s.scope, key)
	ekey := r.entryKey(pkey)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	start := time.Now()
	pipe := r.client.Pipeline()
	entry := pipe.Get(ctx, ekey)
	vcmds := make([]*redis.StringCmd, 1+len(tables))
	vcmds[0] = pipe.Get(ctx, r.versionKey(&r.c.global))
	for i, g := range tables {
		vcmds[i+1] = pipe.Get(ctx, r.versionKey(g))
	}
	_, _ = pipe.Exec(ctx)
	if failed(entry.Err()) || slices.ContainsFunc(vcmds, func(c *redis.StringCmd) bool { return failed(c.Err()) }) {
		r.stats.errors.Add(1)
		r.fail()
		r.stats.unavailable.Add(1)
		return false, nil
	}
	r.observeRTT(time.Since(start))

	versions := make([]uint64, len(vcmds))
	var absent []int
	for i, cmd := range vcmds {
		v, err := cmd.Uint64()
		if err != nil {
			absent = append(absent, i)
			continue
		}
		versions[i] = v
	}
	if absent != nil {
		// Never made, evicted or expired: made now at a random value (or
		// read, if another process just made it), in a second round trip.
		// No entry holds it: a miss, whose fill is written under it.
		r.stats.unknown.Add(1)
		pipe := r.client.Pipeline()
		made := make([]*redis.Cmd, len(absent))
		for j, i := range absent {
			made[j] = ensureScript.Eval(ctx, pipe, []string{vcmds[i].Args()[1].(string)}, randomVersion(), versionTTL.Milliseconds())
		}
		_, _ = pipe.Exec(ctx)
		for j, i := range absent {
			v, err := made[j].Uint64()
			if err != nil {
				if failed(err) {
					r.stats.errors.Add(1)
					r.fail()
				}
				return false, nil
			}
			versions[i] = v
		}
		r.brk.succeed()
		r.stats.misses.Add(1)
		return false, &redisFill{versions: versions, key: pkey}
	}
	r.brk.succeed() // counted once the lookup is whole: a lookup that cannot make its versions (a full Redis) fails
	rf = &redisFill{versions: versions, key: pkey}
	e, err := entry.Bytes()
	if err != nil {
		r.stats.misses.Add(1)
		return false, rf
	}
	now := time.Now()
	_, body, ok := validEntry(e, now.UnixNano(), versions, pkey)
	if !ok {
		r.stats.stale.Add(1)
		return false, rf
	}
	// An invalidation received while the round trip ran may have made the
	// entry stale before its version moved: serve it only if none did.
	var cur [8]uint64
	if !slices.Equal(r.c.generations(cur[:0], tables), gens) {
		r.stats.stale.Add(1)
		return false, nil
	}
	if !r.c.promote(dst, hash, sk, int64(binary.LittleEndian.Uint64(e)), tables, gens, key, body, now) {
		r.stats.misses.Add(1)
		return false, rf
	}
	r.stats.hits.Add(1)
	return true, nil
}

// failed: a call's error other than an absent key's.
func failed(err error) bool { return err != nil && !errors.Is(err, redis.Nil) }

// promote stores an entry read from Redis (its expiry and body) in the
// process's own tier, under the local generations and key, and sets dst
// to replay it.
func (c *Cache) promote(dst *Rows, hash keyHash, sk string, expiry int64, tables []*generation, gens []uint64, key, body []byte, now time.Time) bool {
	local := appendHeader(make([]byte, 0, len(body)+len(key)+16+10*len(gens)), time.Unix(0, expiry), gens, key)
	local = append(local, body...)
	stored, lbody, ok := validEntry(local, now.UnixNano(), gens, key)
	if !ok {
		return false
	}
	d, err := c.decode(local, stored, lbody, gens)
	if err != nil {
		return false
	}
	c.global.markFilled(gens[0]) // as Fill.Finish does, for the invalidations' count
	for _, g := range tables {
		g.markFilled(gens[0])
	}
	if c.storeBytes(hash, sk, local) {
		c.stats.fills.Add(1)
	}
	c.hot.put(&hash, d)
	dst.replay(c, d)
	return true
}

// DropLocal drops every entry of the process's own tier (the store and the
// hot set), not Redis's: as a process started afresh would find it.
func (c *Cache) DropLocal() {
	for i := range c.setMu {
		c.setMu[i].Lock()
	}
	c.hot.clear()
	_ = c.store.Reset() // BigCache's Reset calls no removal callback
	c.stats.heldBytes.Store(0)
	for i := range c.setMu {
		c.setMu[i].Unlock()
	}
}

// ---- writes ----

// written queues a fill's entry for Redis: the same bytes as the process's
// own entry after its header, under a header of the Redis versions and the
// portable key. An entry whose columns are not all of portable types is
// not written.
func (r *redisTier) written(rf *redisFill, expiry time.Time, body []byte) {
	section, _, err := readBytes(body)
	if err != nil {
		return
	}
	set, err := r.c.columns(section)
	if err != nil {
		return
	}
	for _, col := range set.cols {
		if int(col.scanType) >= len(portableTypes) {
			return
		}
	}
	ttl := time.Until(expiry)
	if ttl < time.Millisecond {
		return
	}
	v := appendHeader(make([]byte, 0, len(body)+len(rf.key)+16+10*len(rf.versions)), expiry, rf.versions, rf.key)
	v = append(v, body...)
	r.queue(redisWrite{key: r.entryKey(rf.key), value: v, ttl: ttl})
}

func (r *redisTier) queue(w redisWrite) {
	if !r.usable() {
		r.stats.dropped.Add(1)
		return
	}
	select {
	case r.writes <- w:
	default:
		r.stats.dropped.Add(1) // Redis is slower than the fills: they are not waited for
	}
}

// writer sends the queued writes, a pipeline at a time.
func (r *redisTier) writer() {
	defer r.workers.Done()
	batch := make([]redisWrite, 0, 64)
	for {
		select {
		case <-r.stop:
			return
		case w := <-r.writes:
			batch = append(batch[:0], w)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case w := <-r.writes:
				batch = append(batch, w)
			default:
				break more
			}
		}
		r.send(batch)
	}
}

func (r *redisTier) send(batch []redisWrite) {
	if !r.usable() {
		r.stats.dropped.Add(int64(len(batch)))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisWriteBudget*r.timeout)
	defer cancel()
	pipe := r.client.Pipeline()
	entries := len(batch)
	for _, w := range batch {
		pipe.Set(ctx, w.key, w.value, w.ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.stats.errors.Add(1)
		r.stats.dropped.Add(int64(entries))
		r.fail()
		return
	}
	r.brk.succeed()
	r.stats.writes.Add(int64(entries))
}

// ---- breaker ----

// breaker stops the calls to Redis after breakerThreshold failures in a
// row, for breakerMinWait doubling up to breakerMaxWait; the bumper then
// probes it (by moving the global version).
type breaker struct {
	mu       sync.Mutex
	failures int
	open     bool
	until    time.Time
	backoff  time.Duration
	isOpen   atomic.Bool
}

// fail counts a failure and reports whether it opened the breaker.
func (b *breaker) fail(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.open {
		b.backoff = min(2*b.backoff, breakerMaxWait)
		b.until = now.Add(b.backoff)
		return false
	}
	if b.failures < breakerThreshold {
		return false
	}
	b.open, b.backoff = true, breakerMinWait
	b.until = now.Add(b.backoff)
	b.isOpen.Store(true)
	return true
}

func (b *breaker) succeed() {
	if !b.isOpen.Load() {
		b.mu.Lock()
		b.failures = 0
		b.mu.Unlock()
		return
	}
	b.mu.Lock()
	b.failures, b.open = 0, false
	b.isOpen.Store(false)
	b.mu.Unlock()
}

func (b *breaker) closed() bool { return !b.isOpen.Load() }

// wait is how long the bumper waits before its next probe; 0 when closed
// or due.
func (b *breaker) wait(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open || !now.Before(b.until) {
		return 0
	}
	return b.until.Sub(now)
}

func (b *breaker) retryIn(now time.Time) time.Duration {
	if w := b.wait(now); w > 0 {
		return w
	}
	return breakerMinWait
}

// ---- statistics ----

// RedisStats are the shared tier's figures.
type RedisStats struct {
	// Addr is the Redis the tier uses (host:port of its URL, never a
	// password; "client" for an application's client); Prefix starts its
	// keys.
	Addr   string `json:"addr"`
	Prefix string `json:"prefix"`
	// State: up; down (the breaker is open: the tier is not called);
	// resync (moving the global version before reads resume); or checking
	// (the change feed came up: asking whether another process covered
	// the time before it).
	State string `json:"state"`
	// Hits, Misses and Stale count the lookups made (Stale: an entry was
	// there, under versions that moved); Unknown those that found a
	// version absent (a miss too: the key is then made, in a second round
	// trip).
	Hits    int64 `json:"hits"`
	Misses  int64 `json:"misses"`
	Stale   int64 `json:"stale"`
	Unknown int64 `json:"unknown_versions"`
	// Skipped counts the lookups not made because the query costs less
	// than RoundTrips round trips (no call to Redis);
	// Unavailable those not made because Redis was failing, resyncing,
	// or a version of this process's invalidations was not moved yet.
	Skipped     int64 `json:"skipped"`
	Unavailable int64 `json:"unavailable"`
	// Writes counts the entries written; Dropped those not (queue full,
	// Redis failing).
	Writes  int64 `json:"writes"`
	Dropped int64 `json:"dropped"`
	// VersionMoves counts the versions moved (INCR); Errors every failed
	// call; BreakerOpens the times the breaker opened; Resyncs the moves
	// of the global version that ended an outage.
	VersionMoves int64 `json:"version_moves"`
	Errors       int64 `json:"errors"`
	BreakerOpens int64 `json:"breaker_opens"`
	Resyncs      int64 `json:"resyncs"`
	// Covering: this process acknowledges the others' barriers (its feed
	// is up and every version it had to move moved); CoveredStarts counts
	// its feed's comings up that another process covered (no global move).
	Covering      bool  `json:"covering"`
	CoveredStarts int64 `json:"covered_starts"`
	// RoundTripMicros is the round trip of a lookup (the median of the
	// last 16), in µs;
	// FingerprintsConsulted and FingerprintsSkipped the decision for the
	// fingerprints measured: consulted once their misses cost 2 x
	// WorthFactor round trips, skipped again below WorthFactor / 2.
	RoundTripMicros       float64 `json:"round_trip_us"`
	WorthFactor           int     `json:"worth_factor"`
	FingerprintsConsulted int     `json:"fingerprints_consulted"`
	FingerprintsSkipped   int     `json:"fingerprints_skipped"`
}

func (r *redisTier) snapshot() *RedisStats {
	s := &RedisStats{
		Addr: r.addr, Prefix: r.prefix[:len(r.prefix)-len(redisEncoding)], State: "up",
		Hits: r.stats.hits.Load(), Misses: r.stats.misses.Load(), Stale: r.stats.stale.Load(),
		Unknown: r.stats.unknown.Load(), Skipped: r.stats.skipped.Load(), Unavailable: r.stats.unavailable.Load(),
		Writes: r.stats.writes.Load(), Dropped: r.stats.dropped.Load(), VersionMoves: r.stats.bumps.Load(),
		Errors: r.stats.errors.Load(), BreakerOpens: r.stats.opens.Load(), Resyncs: r.stats.resyncs.Load(),
		Covering: r.covering.Load(), CoveredStarts: r.stats.covered.Load(),
		RoundTripMicros: float64(r.rtt.Load()) / 1e3, WorthFactor: int(r.factor),
	}
	switch {
	case !r.brk.closed():
		s.State = "down"
	case r.resync.Load():
		s.State = "resync"
	case r.checking.Load():
		s.State = "checking"
	}
	r.worth.Range(func(_, v any) bool {
		if v.(*worthStat).consulted.Load() || r.always {
			s.FingerprintsConsulted++
		} else {
			s.FingerprintsSkipped++
		}
		return true
	})
	return s
}

func (r *redisTier) resetStats() {
	for _, n := range []*atomic.Int64{&r.stats.hits, &r.stats.misses, &r.stats.stale, &r.stats.skipped,
		&r.stats.unavailable, &r.stats.unknown, &r.stats.writes, &r.stats.dropped, &r.stats.bumps,
		&r.stats.errors, &r.stats.opens, &r.stats.resyncs, &r.stats.covered} {
		n.Store(0)
	}
}

// RedisAddr describes an options' address for the statistics.
func RedisAddr(addrs []string) string {
	if len(addrs) == 1 {
		return addrs[0]
	}
	return strconv.Itoa(len(addrs)) + " nodes: " + strings.Join(addrs, ",")
}
