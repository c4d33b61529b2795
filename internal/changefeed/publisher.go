package changefeed

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// maxPending bounds what a Publisher holds while its connection is down:
// past it, the pending tables collapse into All.
const maxPending = 1024

// Publisher sends payloads on Channel from a connection of its own, in
// batches, so that the caller of a write never waits for it. What it holds
// while the server cannot be reached is sent once it can (bounded: see
// maxPending).
type Publisher struct {
	// Config is the connection's configuration; Run copies it.
	Config *pgconn.Config
	// Sent, if set, is called after each batch reached the server, with
	// the number of payloads in it.
	Sent func(n int)
	// Failed, if set, is called when a batch could not be sent (it is
	// kept and sent again).
	Failed func(err error)

	mu       sync.Mutex
	pending  map[string]struct{}
	inFlight int // payloads of the batch being sent
	wake     chan struct{}
}

// Pending counts the payloads published and not yet sent, the batch being
// sent included.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending) + p.inFlight
}

// Publish queues payloads and returns at once.
func (p *Publisher) Publish(payloads ...string) {
	p.mu.Lock()
	if p.pending == nil {
		p.pending = make(map[string]struct{})
	}
	if _, all := p.pending[All]; !all {
		for _, s := range payloads {
			p.pending[s] = struct{}{}
		}
		if len(p.pending) > maxPending {
			clear(p.pending)
			p.pending[All] = struct{}{}
		}
	}
	p.mu.Unlock()
	select {
	case p.wakeChan() <- struct{}{}:
	default:
	}
}

func (p *Publisher) wakeChan() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wake == nil {
		p.wake = make(chan struct{}, 1)
	}
	return p.wake
}

// take returns the pending payloads and forgets them.
func (p *Publisher) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		return nil
	}
	batch := make([]string, 0, len(p.pending))
	if _, all := p.pending[All]; all {
		batch = append(batch, All)
	} else {
		for s := range p.pending {
			batch = append(batch, s)
		}
	}
	clear(p.pending)
	p.inFlight = len(batch)
	return batch
}

// done ends the batch take returned.
func (p *Publisher) done() {
	p.mu.Lock()
	p.inFlight = 0
	p.mu.Unlock()
}

// finalSend bounds the last send, of what is pending when Run's context
// ends: a process that writes and exits still tells the others.
const finalSend = time.Second

// Run sends what is published until ctx is done, then, within finalSend,
// what is still pending, and returns ctx's error.
func (p *Publisher) Run(ctx context.Context) error {
	wake := p.wakeChan()
	var conn *pgconn.PgConn
	defer func() {
		if batch := p.take(); batch != nil {
			last, cancel := context.WithTimeout(context.Background(), finalSend)
			if p.send(last, &conn, batch) == nil && p.Sent != nil {
				p.Sent(len(batch))
			}
			cancel()
			p.done()
		}
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	delay := 50 * time.Millisecond
	for {
		batch := p.take()
		if batch == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
				continue
			}
		}
		err := p.send(ctx, &conn, batch)
		if err != nil {
			p.Publish(batch...) // again, with whatever came meanwhile
		}
		p.done()
		if err == nil {
			delay = 50 * time.Millisecond
			if p.Sent != nil {
				p.Sent(len(batch))
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p.Failed != nil {
			p.Failed(err)
		}
		if conn != nil {
			conn.Close(context.Background())
			conn = nil
		}
		if !sleep(ctx, jitter(delay)) {
			return ctx.Err()
		}
		delay = min(2*delay, time.Second)
	}
}

// send sends one batch, connecting first if need be.
func (p *Publisher) send(ctx context.Context, conn **pgconn.PgConn, batch []string) error {
	if p.Config == nil {
		return errors.New("changefeed: the publisher has no connection configuration")
	}
	if *conn == nil || (*conn).IsClosed() {
		c, err := pgconn.ConnectConfig(ctx, named(p.Config, PublisherName))
		if err != nil {
			return err
		}
		*conn = c
	}
	return notifyBatch(ctx, *conn, batch)
}

// notifyBatch sends payloads on Channel in one statement, so one
// transaction: PostgreSQL delivers the batch at once, at its commit.
func notifyBatch(ctx context.Context, conn *pgconn.PgConn, batch []string) error {
	arr, err := pgtype.NewMap().Encode(pgtype.TextArrayOID, pgtype.TextFormatCode, batch, nil)
	if err != nil {
		return err
	}
	rr := conn.ExecParams(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`,
		[][]byte{[]byte(Channel), arr}, nil, nil, nil)
	_, err = rr.Close()
	return err
}
