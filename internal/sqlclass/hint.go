package sqlclass

import (
	"strings"
	"time"
)

// cacheHint finds a /* auditpg:cache [ttl=30s] */ comment in sql. It is
// looked for once per SQL text, by the classifier's memo. A ttl that does
// not parse is ignored (the default applies): the hint is a request, and
// a typo must not turn a query into an error.
func cacheHint(sql string) (ok bool, ttl time.Duration) {
	i := strings.Index(sql, "auditpg:cache")
	if i < 0 {
		return false, 0
	}
	before := strings.TrimRight(sql[:i], " \t\r\n")
	if !strings.HasSuffix(before, "/*") {
		return false, 0
	}
	rest := sql[i+len("auditpg:cache"):]
	end := strings.Index(rest, "*/")
	if end < 0 {
		return false, 0
	}
	for _, f := range strings.Fields(rest[:end]) {
		if v, found := strings.CutPrefix(f, "ttl="); found {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				ttl = d
			}
		}
	}
	return true, ttl
}
