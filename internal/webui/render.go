package webui

import (
	"fmt"
	"html/template"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/bytesize"
	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/auditpg/auditpg/monitor"
)

// parsePages parses each page's template with the layout.
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"bytes": bytesize.Human,
	"num":   num,
	"dur":   dur,
	"ms":    func(f float64) string { return ms(f) },
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"when": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
	"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"clip": func(s string, n int) string {
		r := []rune(strings.Join(strings.Fields(s), " "))
		if len(r) <= n {
			return string(r)
		}
		return string(r[:n-1]) + "…"
	},
	"ns":   func(d time.Duration) int64 { return int64(d) },
	"f":    func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"f1":   func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"days": func(d time.Duration) string { return fmt.Sprintf("%.1f", d.Hours()/24) },
	"status": func(s monitor.Status) string {
		return string(s)
	},
	"int64": func(n int) int64 { return int64(n) },
	// stmt is a statement as the pages show it: the classifier's
	// fingerprint, literals as $n. pg_stat_statements keeps utility
	// statements (ALTER ROLE ... PASSWORD '...', say) as they were sent.
	"stmt": func(s string) string { return sqlclass.Classify(s).Fingerprint },
}

// num writes n with thousands separators: 1,234,567.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// dur writes a duration for a person: 3.2 ms, 1.25 s, 41 µs.
func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}
