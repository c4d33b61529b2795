package otel

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/auditpg/auditpg/internal/otelobs"
	otelapi "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
)

// RegisterPoolMetrics reports the pool of db (any driver) under the
// database conventions' names, read from db.Stats() at each collection, with
// db.client.connection.pool.name=poolName:
//
//   - db.client.connection.count, state=idle|used
//   - db.client.connection.max (0 when unlimited)
//   - db.client.connection.idle.max, with WithPoolMaxIdleConns only
//   - db.client.connection.wait_time, a histogram in seconds
//
// database/sql gives only the total wait time and count: each collection
// records the waits that ended since the previous one at their mean, so
// the histogram's sum is exact, its count nearly so (waits still under way
// at a collection may be attributed to the next) and its buckets
// approximate.
// db.client.connection.pending_requests and .timeouts are not reported:
// database/sql counts neither.
//
// It honours WithMeterProvider and WithPoolMaxIdleConns. Call unregister
// before closing db.
func RegisterPoolMetrics(db *sql.DB, poolName string, opts ...Option) (unregister func() error, err error) {
	if db == nil {
		return nil, errors.New("otel: RegisterPoolMetrics(nil, ...): want the *sql.DB whose pool to report")
	}
	cfg := otelobs.NewConfig(opts...)
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otelapi.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName)

	count, err1 := dbconv.NewClientConnectionCountObservable(meter)
	maxConns, err2 := dbconv.NewClientConnectionMaxObservable(meter)
	idleMax, err3 := dbconv.NewClientConnectionIdleMaxObservable(meter)
	wait, err4 := dbconv.NewClientConnectionWaitTime(meter, metric.WithExplicitBucketBoundaries(otelobs.DurationBuckets...))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("otel: pool metrics: %w", err)
	}

	pool := metric.WithAttributes(semconv.DBClientConnectionPoolName(poolName))
	idle := metric.WithAttributes(semconv.DBClientConnectionPoolName(poolName), semconv.DBClientConnectionStateIdle)
	used := metric.WithAttributes(semconv.DBClientConnectionPoolName(poolName), semconv.DBClientConnectionStateUsed)
	var (
		mu        sync.Mutex // collections may run concurrently, one per reader
		lastCount int64
		lastWait  time.Duration
	)
	observables := []metric.Observable{count.Inst(), maxConns.Inst()}
	if cfg.PoolMaxIdle >= 0 {
		observables = append(observables, idleMax.Inst())
	}
	reg, err := meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		s := db.Stats()
		o.ObserveInt64(count.Inst(), int64(s.Idle), idle)
		o.ObserveInt64(count.Inst(), int64(s.InUse), used)
		o.ObserveInt64(maxConns.Inst(), int64(s.MaxOpenConnections), pool)
		if cfg.PoolMaxIdle >= 0 {
			o.ObserveInt64(idleMax.Inst(), int64(cfg.PoolMaxIdle), pool)
		}
		// database/sql counts a wait when it starts and adds its duration
		// when it ends: waits counted with no duration yet are carried over.
		mu.Lock()
		n, total := s.WaitCount-lastCount, s.WaitDuration-lastWait
		if total > 0 {
			lastCount, lastWait = s.WaitCount, s.WaitDuration
		}
		mu.Unlock()
		if total > 0 {
			n = max(n, 1)
			mean := total.Seconds() / float64(n)
			for range n {
				wait.Inst().Record(ctx, mean, pool)
			}
		}
		return nil
	}, observables...)
	if err != nil {
		return nil, fmt.Errorf("otel: pool metrics: %w", err)
	}
	return reg.Unregister, nil
}
