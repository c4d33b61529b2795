package webui

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/partition"
)

func TestCoverage(t *testing.T) {
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	now := day.Add(6 * time.Hour)
	p := func(from, to int) partition.Partition {
		return partition.Partition{From: day.AddDate(0, 0, from), To: day.AddDate(0, 0, to)}
	}
	for _, c := range []struct {
		name string
		ps   []partition.Partition
		want time.Duration
	}{
		{"contiguous", []partition.Partition{p(-1, 0), p(0, 1), p(1, 2), p(2, 3), {Default: true}}, 3*24*time.Hour - 6*time.Hour},
		{"a gap ahead", []partition.Partition{p(0, 1), p(2, 3)}, 18 * time.Hour},
		{"none holds now", []partition.Partition{p(1, 2)}, 0},
		{"only the default", []partition.Partition{{Default: true}}, 0},
	} {
		got, words := coverage(&partition.Listing{Partitions: c.ps}, now)
		if got != c.want || words == "" {
			t.Errorf("%s: %v %q, want %v", c.name, got, words, c.want)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 26.2: 50, 120: 200} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}

// TestSamplerBounded: the ring keeps at most a window of samples, and
// sampling stops once no page was asked for a whole window.
func TestSamplerBounded(t *testing.T) {
	var taken atomic.Int64
	s := newSampler(time.Millisecond, 10*time.Millisecond, func(context.Context) (sample, error) {
		taken.Add(1)
		return sample{At: time.Now()}, nil
	})
	s.touch()
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	n, c := len(s.ring), s.cap
	s.mu.Unlock()
	if n > c || c != 11 {
		t.Errorf("ring holds %d samples, cap %d; want at most 11", n, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sampling goes on with nobody looking")
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := taken.Load()
	time.Sleep(20 * time.Millisecond)
	if taken.Load() != before {
		t.Error("samples taken after sampling stopped")
	}
}

func TestNum(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}
