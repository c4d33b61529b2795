package webui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/bytesize"
	"github.com/auditpg/auditpg/partition"
)

// chart is an SVG chart drawn on the server: the template places its
// shapes, the stylesheet colours them by class.
type chart struct {
	W, H                    float64 // the viewBox
	Left, Top, PlotW, PlotH float64
	Series                  []series
	Bars                    []bar
	YTicks, XTicks          []tick
	// Empty, when not "", is shown instead of the plot.
	Empty string
}

type series struct {
	Name, Class string
	Points      string // x,y pairs for a polyline
	Last        string // the latest value, for the legend
	N           int    // points
}

type bar struct {
	X, Y, W, H float64
	Label      string
	Bytes      int64
	Default    bool
}

type tick struct {
	X, Y  float64
	Label string
}

func newChart() *chart {
	c := &chart{W: 720, H: 200, Left: 64, Top: 10}
	c.PlotW, c.PlotH = c.W-c.Left-12, c.H-c.Top-26
	return c
}

// point is one value at one time.
type point struct {
	At time.Time
	V  float64
}

// span is the time a chart of samples covers up to now: since the first
// sample, at least ten sampling intervals and at most Window, so that the
// first minutes of sampling are not squeezed against the right edge.
func span(ss []sample, now time.Time, every time.Duration) time.Duration {
	if len(ss) == 0 {
		return Window
	}
	return min(max(now.Sub(ss[0].At), 10*every), Window)
}

// lines places the series of points over the span ending at now, with
// y from 0 to the largest value (or to yMax when it is above 0).
func lines(now time.Time, span time.Duration, yMax float64, unit func(float64) string, names, classes []string, data [][]point) *chart {
	c := newChart()
	from := now.Add(-span)
	top := yMax
	if top <= 0 {
		for _, d := range data {
			for _, p := range d {
				top = math.Max(top, p.V)
			}
		}
		top = niceCeil(top)
	}
	for i, d := range data {
		if len(d) == 0 {
			continue
		}
		var b strings.Builder
		for _, p := range d {
			x := c.Left + c.PlotW*math.Max(0, float64(p.At.Sub(from))/float64(span))
			y := c.Top + c.PlotH*(1-p.V/top)
			fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		}
		c.Series = append(c.Series, series{Name: names[i], Class: classes[i], Points: strings.TrimSpace(b.String()),
			Last: unit(d[len(d)-1].V), N: len(d)})
	}
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: c.Top + c.PlotH*(1-float64(i)/4), Label: unit(v)})
	}
	for i := 0; i <= 4; i++ {
		ago := span * time.Duration(4-i) / 4
		label := fmt.Sprintf("-%.0fm", ago.Minutes())
		if span < 4*time.Minute {
			label = fmt.Sprintf("-%.0fs", ago.Seconds())
		}
		if ago == 0 {
			label = "now"
		}
		c.XTicks = append(c.XTicks, tick{X: c.Left + c.PlotW*float64(i)/4, Y: c.H - 8, Label: label})
	}
	if len(c.Series) == 0 {
		c.Empty = "no figures yet: the chart fills as samples are taken"
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func ms(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 1:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func percent(v float64) string { return fmt.Sprintf("%.0f%%", v) }

// latencyChart draws the server's mean statement time per interval (the
// change of pg_stat_statements' total time over the change of its calls)
// and, in the application, the driver's p50, p95 and p99 of its busiest
// fingerprint as the latest sample names it (since the statistics' reset).
func latencyChart(ss []sample, now time.Time, every time.Duration) (*chart, string) {
	var mean, p50, p95, p99 []point
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		if a.Statements && b.Statements && b.Calls > a.Calls && b.Total >= a.Total {
			mean = append(mean, point{b.At, float64(b.Total-a.Total) / float64(b.Calls-a.Calls) / 1e6})
		}
	}
	caption := ""
	if n := len(ss); n > 0 && len(ss[n-1].Top) > 0 {
		fp := ss[n-1].Top[0].Fingerprint
		caption = ss[n-1].Top[0].Summary
		for _, s := range ss {
			for _, t := range s.Top {
				if t.Fingerprint == fp {
					p50 = append(p50, point{s.At, float64(t.P50) / 1e6})
					p95 = append(p95, point{s.At, float64(t.P95) / 1e6})
					p99 = append(p99, point{s.At, float64(t.P99) / 1e6})
				}
			}
		}
	}
	return lines(now, span(ss, now, every), 0, ms,
		[]string{"server mean", "driver p50", "driver p95", "driver p99"},
		[]string{"s-mean", "s-p50", "s-p95", "s-p99"},
		[][]point{mean, p50, p95, p99}), caption
}

// hitRatioChart draws the buffer cache hit ratio per interval and, in the
// application, the result cache's.
func hitRatioChart(ss []sample, now time.Time, every time.Duration) *chart {
	var buf, res []point
	for i := 1; i < len(ss); i++ {
		a, b := ss[i-1], ss[i]
		if db := b.BufBlocks - a.BufBlocks; db > 0 && b.BufHits >= a.BufHits {
			buf = append(buf, point{b.At, 100 * float64(b.BufHits-a.BufHits) / float64(db)})
		}
		if a.Cache && b.Cache {
			h, m := b.CacheHits-a.CacheHits, b.CacheMisses-a.CacheMisses
			if h >= 0 && m >= 0 && h+m > 0 {
				res = append(res, point{b.At, 100 * float64(h) / float64(h+m)})
			}
		}
	}
	return lines(now, span(ss, now, every), 100, percent, []string{"buffer cache", "result cache"}, []string{"s-buf", "s-res"}, [][]point{buf, res})
}

// sizeChart draws one bar a partition, in range order, the default last.
func sizeChart(l *partition.Listing) *chart {
	c := newChart()
	n := len(l.Partitions)
	if n == 0 {
		c.Empty = "no partitions"
		return c
	}
	var top int64
	for _, p := range l.Partitions {
		top = max(top, p.SizeBytes)
	}
	yTop := niceCeil(float64(top))
	w := c.PlotW / float64(n)
	for i, p := range l.Partitions {
		h := c.PlotH * float64(p.SizeBytes) / yTop
		c.Bars = append(c.Bars, bar{X: c.Left + w*float64(i) + w*0.1, Y: c.Top + c.PlotH - h, W: math.Max(w*0.8, 0.5), H: h,
			Label: p.Name, Bytes: p.SizeBytes, Default: p.Default})
	}
	for i := 0; i <= 4; i++ {
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: c.Top + c.PlotH*(1-float64(i)/4), Label: bytesize.Human(int64(yTop * float64(i) / 4))})
	}
	first, last := l.Partitions[0], l.Partitions[n-1]
	c.XTicks = []tick{{X: c.Left, Y: c.H - 8, Label: first.Name}}
	if n > 1 {
		c.XTicks = append(c.XTicks, tick{X: c.Left + c.PlotW, Y: c.H - 8, Label: last.Name})
	}
	return c
}
