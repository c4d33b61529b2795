package sqlclass

import (
	"strings"
)

// wflag says what a word is to the classifier.
type wflag uint16

const (
	fKeyword    wflag = 1 << iota // upper-cased in fingerprints; never a bare alias
	fNoFunc                       // followed by "(" it is syntax, not a function call: IN (...)
	fAfterCall                    // syntax, not a call, right after ")": count(*) FILTER (...)
	fEndFrom                      // ends a FROM list
	fQueryStart                   // starts a query, in parentheses a subquery
	fVolatileKw                   // a volatile value written without parentheses: CURRENT_DATE
	fSafe                         // read-only function whose result depends only on its input
	fVolatile                     // read-only function whose result may change between calls
	fSideEffect                   // writes no table, but is not read-only (locks, notifications)
	fSequence                     // advances or sets a sequence
	fSession                      // changes session settings
	fNotColID                     // reserved or type_func_name keyword: cannot name a relation or alias one unqualified
)

// fnFlags are the flags that also hold for a quoted name: "now"() is now().
const fnFlags = fSafe | fVolatile | fSideEffect | fSequence | fSession

type word struct {
	name, upper string
	flags       wflag
}

// maxWordLen bounds the entries of words, so a lookup can fold case in a
// small stack buffer.
const maxWordLen = 32

// words interns the words the classifier knows: folding "SELECT" to its
// entry allocates nothing.
var words = func() map[string]*word {
	m := make(map[string]*word, 640)
	add := func(f wflag, list string) {
		for _, n := range strings.Fields(list) {
			w := m[n]
			if w == nil {
				w = &word{name: n, upper: strings.ToUpper(n)}
				m[n] = w
			}
			w.flags |= f
		}
	}
	add(fKeyword, `all analyse analyze and any array as asc asymmetric at
		authorization between binary both by cascade case cast check collate
		collation column concurrently conflict constraint create cross
		current_catalog current_date current_role current_schema current_time
		current_timestamp current_user database default deferrable delete desc
		distinct do else end escape except exists extension false fetch filter
		first for foreign freeze from full function grant group groups having if
		ilike in index initially inner insert intersect into is isnull join
		last lateral leading left like limit localtime localtimestamp locked
		materialized matched merge natural no not nothing notnull nowait null
		nulls of offset on only or order ordinality outer over overlaps
		overriding partition placing primary procedure range recursive
		references replace restrict returning right rows schema select sequence
		session_user set share similar skip some symmetric system_user table
		tablesample temp temporary then ties to trailing transaction trigger
		true union unique unlogged update user using values variadic verbose
		view when where window with within`)
	// Reserved words, and words of syntax that a function cannot be named.
	add(fNoFunc, `all and any array as asc asymmetric authorization between
		binary both by case cast check collate collation column concurrently
		conflict constraint create cross current_catalog current_date
		current_role current_time current_timestamp current_user default
		deferrable delete desc distinct do else end except exists false fetch
		for foreign freeze from full grant group having ilike in initially
		inner insert intersect into is isnull join lateral leading like limit
		localtime localtimestamp merge natural not notnull null offset on only
		or order outer overlaps placing precision primary references returning
		row select session_user set sets similar some symmetric system_user
		table tablesample then to trailing true union unique update user using
		values variadic varying verbose when where window with`)
	// PostgreSQL's reserved and type_func_name keywords (kwlist.h of
	// versions 15 to 17; system_user is reserved from 16): the grammar's
	// ColId, which names a relation, a CTE or an alias, is any other word.
	add(fNotColID, `all analyse analyze and any array as asc asymmetric both
		case cast check collate column constraint create current_catalog
		current_date current_role current_time current_timestamp current_user
		default deferrable desc distinct do else end except false fetch for
		foreign from grant group having in initially intersect into lateral
		leading limit localtime localtimestamp not null offset on only or
		order placing primary references returning select session_user some
		symmetric system_user table then to trailing true union unique user
		using variadic when where window with`)
	add(fNotColID, `authorization binary collation concurrently cross
		current_schema freeze full ilike inner is isnull join left like
		natural notnull outer overlaps right similar tablesample verbose`)
	add(fAfterCall, `filter over repeatable`)
	// Reserved words only: a non-reserved one may be a column (ON set, a).
	add(fEndFrom, `do except fetch for group having intersect into limit
		offset order returning select union when where window`)
	add(fQueryStart, `select values table with insert update delete merge`)
	add(fVolatileKw, `current_catalog current_date current_role current_schema
		current_time current_timestamp current_user localtime localtimestamp
		session_user system_user user`)
	add(fSafe, `count sum avg min max array_agg string_agg json_agg jsonb_agg
		json_object_agg jsonb_object_agg bool_and bool_or every bit_and bit_or
		stddev stddev_pop stddev_samp variance var_pop var_samp percentile_cont
		percentile_disc mode corr covar_pop covar_samp grouping cube rollup
		row_number rank dense_rank percent_rank cume_dist ntile lag lead
		first_value last_value nth_value coalesce nullif greatest least lower
		upper initcap length char_length character_length octet_length
		bit_length substr substring trim btrim ltrim rtrim lpad rpad concat
		concat_ws replace split_part strpos position left right reverse repeat
		format md5 encode decode translate overlay starts_with ascii chr to_hex
		quote_ident quote_literal quote_nullable regexp_replace regexp_match
		regexp_matches regexp_split_to_array regexp_split_to_table regexp_like
		abs round floor ceil ceiling trunc mod power sqrt exp ln log sign div
		width_bucket to_json to_jsonb json_build_object jsonb_build_object
		json_build_array jsonb_build_array json_object jsonb_object row_to_json
		array_to_json json_array_length jsonb_array_length json_extract_path
		json_extract_path_text jsonb_extract_path jsonb_extract_path_text
		json_each jsonb_each json_each_text jsonb_each_text json_array_elements
		jsonb_array_elements json_array_elements_text jsonb_array_elements_text
		json_typeof jsonb_typeof json_object_keys jsonb_object_keys jsonb_set
		jsonb_insert jsonb_strip_nulls json_strip_nulls jsonb_pretty
		jsonb_path_query jsonb_path_exists jsonb_path_match
		jsonb_path_query_array jsonb_path_query_first array_length
		array_position array_positions array_remove array_append array_prepend
		array_cat array_to_string string_to_array cardinality unnest
		array_lower array_upper array_dims generate_series generate_subscripts
		date_trunc date_part date_bin extract to_char to_date to_timestamp
		to_number make_date make_time make_timestamp make_timestamptz
		make_interval justify_days justify_hours justify_interval isfinite
		num_nulls num_nonnulls int int2 int4 int8 integer bigint smallint text
		varchar char numeric decimal float4 float8 real bool boolean date time
		timestamp timestamptz interval uuid json jsonb bytea inet cidr`)
	add(fVolatile, `now clock_timestamp statement_timestamp
		transaction_timestamp timeofday random random_normal setseed
		gen_random_uuid gen_random_bytes uuid_generate_v1 uuid_generate_v1mc
		uuid_generate_v4 uuidv4 uuidv7 currval lastval current_setting
		current_schema current_schemas current_database current_query
		txid_current txid_current_if_assigned txid_current_snapshot
		inet_client_addr inet_client_port inet_server_addr inet_server_port
		version age to_regclass to_regtype`)
	add(fSideEffect|fSession, `set_config`)
	add(fSideEffect, `pg_advisory_lock pg_advisory_lock_shared
		pg_advisory_xact_lock pg_advisory_xact_lock_shared pg_try_advisory_lock
		pg_try_advisory_lock_shared pg_try_advisory_xact_lock
		pg_try_advisory_xact_lock_shared pg_advisory_unlock
		pg_advisory_unlock_shared pg_advisory_unlock_all pg_notify
		pg_cancel_backend pg_terminate_backend pg_reload_conf pg_stat_reset
		pg_stat_statements_reset`)
	add(fSequence, `nextval setval`)
	// Statement verbs and other words the classifier compares, interned so
	// that folding them allocates nothing.
	add(0, `abort alter attach begin call checkpoint close cluster comment
		commit copy deallocate declare detach discard drop execute explain
		import key listen load lock move notify policy prepare reassign refresh
		reindex release rename reset revoke rollback rule savepoint security
		share show start statistics system truncate unlisten vacuum`)
	return m
}()

// lookup folds an unquoted word to lower case (ASCII only, as PostgreSQL
// does) and finds it in words.
func lookup(s string) (string, *word) {
	if len(s) <= maxWordLen {
		var buf [maxWordLen]byte
		for i := 0; i < len(s); i++ {
			buf[i] = lowerASCII(s[i])
		}
		if w, ok := words[string(buf[:len(s)])]; ok {
			return w.name, w
		}
	}
	return asciiLower(s), nil
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerASCII(b[j])
			}
			return string(b)
		}
	}
	return s
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
