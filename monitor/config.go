package monitor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/auditpg/auditpg/internal/bytesize"
)

// ConfigReport is configuration advice. Nothing is applied: each advice
// carries the ALTER SYSTEM statement for the operator to run.
type ConfigReport struct {
	// Memory is the machine memory the advice assumes, in bytes (0:
	// unknown, and memory settings are not advised); MemorySource says
	// where it came from: "given" (WithMemory) or /proc/meminfo.
	Memory        int64    `json:"memory_bytes"`
	MemorySource  string   `json:"memory_source"`
	DatabaseBytes int64    `json:"database_bytes"`
	Advice        []Advice `json:"advice"`
	Notes         []string `json:"notes"`
}

// Advice is one setting: its current value (with the unit pg_settings
// reports it in), the suggested value and why.
type Advice struct {
	Name      string `json:"name"`
	Current   string `json:"current"`
	Suggested string `json:"suggested"`
	// Change: the current value is off the suggestion by more than 25%.
	Change bool   `json:"change"`
	Why    string `json:"why"`
	// Restart: the setting only changes at server start.
	Restart bool   `json:"restart"`
	SQL     string `json:"sql"`
}

// setting is one row of pg_settings, its value converted to base units
// (bytes for memory, milliseconds for time).
type setting struct {
	name, raw, unit, context string
	value                    float64
}

// configSettings are the settings the advice reads.
const configSettings = `'shared_buffers', 'effective_cache_size', 'work_mem', 'maintenance_work_mem', 'max_connections',
	'checkpoint_completion_target', 'max_wal_size', 'random_page_cost', 'effective_io_concurrency', 'wal_buffers'`

// ConfigAdvice reads the settings with their units, the machine's memory
// (WithMemory, else /proc/meminfo) and the database size, and suggests
// values in the manner of PGTune for a mixed workload on SSD storage.
func (m *Monitor) ConfigAdvice(ctx context.Context) (*ConfigReport, error) {
	r := &ConfigReport{Advice: []Advice{}, Notes: []string{}}
	settings := map[string]setting{}
	err := m.queryRows(ctx, "settings", `SELECT name, setting, coalesce(unit, ''), context FROM pg_settings WHERE name IN (`+configSettings+`)`,
		func(row scanner) error {
			var s setting
			if err := row.Scan(&s.name, &s.raw, &s.unit, &s.context); err != nil {
				return err
			}
			v, err := strconv.ParseFloat(s.raw, 64)
			if err != nil {
				return fmt.Errorf("setting %s = %q: %w", s.name, s.raw, err)
			}
			mult, err := unitMultiplier(s.unit)
			if err != nil {
				return fmt.Errorf("setting %s: %w", s.name, err)
			}
			s.value = v * mult
			if v < 0 { // -1: automatic
				s.value = v
			}
			settings[s.name] = s
			return nil
		})
	if err != nil {
		return nil, err
	}
	if err := m.q.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&r.DatabaseBytes); err != nil {
		return nil, fmt.Errorf("monitor: database size: %w", err)
	}
	r.Memory, r.MemorySource = m.memory, "given"
	if r.Memory <= 0 {
		mem, err := readMemTotal("/proc/meminfo")
		if err != nil {
			r.Notes = append(r.Notes, "machine memory unknown ("+err.Error()+"): memory settings not advised")
		} else {
			r.Memory, r.MemorySource = mem, "/proc/meminfo of the machine running the monitor: right only if the server runs here too"
		}
	}
	advise := func(name string, suggested float64, why string) {
		s, ok := settings[name]
		if !ok {
			return
		}
		a := Advice{Name: name, Current: formatSetting(s.value, s.unit, s.raw), Why: why, Restart: s.context == "postmaster"}
		a.Suggested = formatSetting(suggested, s.unit, "")
		a.Change = s.value < 0 && suggested >= 0 || s.value >= 0 && (s.value < 0.75*suggested || s.value > 1.25*suggested)
		a.SQL = fmt.Sprintf("ALTER SYSTEM SET %s = '%s';", name, a.Suggested)
		if a.Restart {
			a.SQL += " -- then restart the server"
		} else {
			a.SQL += " SELECT pg_reload_conf();"
		}
		r.Advice = append(r.Advice, a)
	}
	const mb, gb = 1 << 20, 1 << 30
	if mem := float64(r.Memory); mem > 0 {
		shared := min(mem/4, max(128*mb, roundMB(2*float64(r.DatabaseBytes))))
		advise("shared_buffers", roundMB(shared), fmt.Sprintf(
			"25%% of the memory (%s), but no more than twice the database (%s): pages beyond it are never read",
			formatBytes(roundMB(mem/4)), formatBytes(roundMB(float64(r.DatabaseBytes)))))
		advise("effective_cache_size", roundMB(mem*3/4), "75% of the memory: what the planner may assume the OS and PostgreSQL cache together")
		advise("maintenance_work_mem", roundMB(min(max(mem/16, 64*mb), 2*gb)), "1/16 of the memory, at most 2GB: faster VACUUM and CREATE INDEX")
		conns := max(settings["max_connections"].value, 1)
		advise("work_mem", roundMB(max((mem-shared)/(conns*3), 4*mb)), fmt.Sprintf(
			"(memory - shared_buffers) / (3 x max_connections = %.0f): each sort or hash of each query may use this much", conns))
	}
	advise("checkpoint_completion_target", 0.9, "spread checkpoint writes over 90% of the interval (the default from PostgreSQL 14)")
	advise("max_wal_size", roundMB(min(max(float64(r.DatabaseBytes)/10, 1*gb), 16*gb)), "a tenth of the database, between 1GB and 16GB: fewer forced checkpoints during bulk writes")
	advise("random_page_cost", 1.1, "assumes SSD or NVMe storage, where random reads cost about as much as sequential ones; keep 4 on spinning disks")
	advise("effective_io_concurrency", 200, "assumes SSD or NVMe storage, which serves many concurrent reads; keep 1-2 on spinning disks")
	return r, nil
}

// unitMultiplier converts a pg_settings unit ("8kB", "kB", "MB", "ms",
// "s", "min", "") to the factor to bytes or milliseconds.
func unitMultiplier(unit string) (float64, error) {
	if unit == "" {
		return 1, nil
	}
	i := 0
	for i < len(unit) && unit[i] >= '0' && unit[i] <= '9' {
		i++
	}
	n := 1.0
	if i > 0 {
		v, err := strconv.Atoi(unit[:i])
		if err != nil {
			return 0, err
		}
		n = float64(v)
	}
	base, ok := map[string]float64{
		"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40,
		"us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000,
	}[unit[i:]]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	return n * base, nil
}

// isMemoryUnit reports whether a pg_settings unit is a size.
func isMemoryUnit(unit string) bool { return strings.HasSuffix(unit, "B") }

// formatSetting renders a value in base units the way postgresql.conf
// takes it; raw is used for -1 and unitless values when given.
func formatSetting(v float64, unit, raw string) string {
	switch {
	case v < 0:
		return raw + " (automatic)"
	case isMemoryUnit(unit):
		return formatBytes(v)
	case unit == "":
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "ms"
}

// formatBytes renders bytes the way postgresql.conf takes them.
func formatBytes(v float64) string { return bytesize.Format(int64(v)) }

// roundMB rounds bytes down to a whole megabyte (at least 1MB).
func roundMB(v float64) float64 { return max(float64(int64(v)>>20), 1) * (1 << 20) }

// readMemTotal reads MemTotal from a meminfo file, in bytes.
func readMemTotal(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal: %w", path, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemTotal line", path)
}

// ParseSize parses a memory size as postgresql.conf writes it: "8GB",
// "512MB", "1.5GB", "64kB", or a number of bytes. The units are B, kB, MB,
// GB and TB, each 1024 times the one before.
func ParseSize(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("monitor: %w", err)
	}
	return n, nil
}
