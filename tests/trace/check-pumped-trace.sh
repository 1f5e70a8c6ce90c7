#!/bin/sh
# check-pumped-trace.sh: tests of tools/pumped-trace, run by `make check`
# from the top build directory (the fixtures found through $srcdir).
#
# 1. The summary of hand-written traces (docs/trace.md's format): every
#    figure compared with the one worked out by hand, the critical paths
#    and their shares, the dropped_events warning.
# 2. The SVG: well formed (xmllint when installed), the legend's names
#    escaped, failed and cancelled executions marked.
# 3. A generated trace of about 11,000 executions: drawn in a few seconds
#    into under 5 MB, narrow bars merged, all drawn when wide enough.
# 4. Malformed input, stored (truncated, bad escape, lone surrogate,
#    trailing comma) or generated (100,000 nested arrays, bad UTF-8, every
#    13th prefix of a good file): exit status 1 and a message with the
#    byte offset, never a crash.
# 5. Usage: --help, bad options (exit 2), a missing file (exit 1).
# 6. --merge: two ranks' files with different origins and clock offsets
#    (the ts shifted, checked numerically, exact beyond a double's 2^53),
#    a parent in the other file (its s moved onto the proxy and clamped
#    into it, or added), colliding pids, a file without origin_unix_ns,
#    a malformed input (exit 1, OUT left as it was), the otherData, the
#    summary's links line, a merge of a merge.
# Exit 0 when all pass, 1 otherwise, with one line per failure.
set -u
fix=${srcdir:-.}/tests/trace
prog=./tools/pumped-trace
if [ ! -x "$prog" ]; then
	echo "check-pumped-trace: $prog not built"
	exit 1
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# Runs the program; its exit status in $rc, output in $tmp/out, $tmp/err.
run() {
	"$prog" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# expect_rc WANT WHAT
expect_rc() {
	[ "$rc" -eq "$1" ] ||
		fail "$2: exit status $rc, expected $1 ($(head -c 300 "$tmp/err"))"
}

# expect_in FILE TEXT WHAT: TEXT a fixed string, on one line of FILE.
expect_in() {
	grep -qF -- "$2" "$1" || fail "$3: no '$2' in the output"
}

# ------------------------------------------------- 1. the summaries

run "$fix/basic.json"
expect_rc 0 "basic.json"
# All but the first line (which names the file, that is $srcdir).  By
# hand: main 1000 and 500 us; work 300, 600, 400 (failed) and one that
# never started; leaf 100, 150; the odd name one cancelled 300; tick 50
# with 250 ns pending.  p50 and p99 are nearest-rank: ranks ceil(n/2)
# and ceil(0.99 n).
cat >"$tmp/want" <<'EOF'
23 events, 10 executions of 5 flows, 3 roots, 4 threads
dropped_events: 3 (buffer_events 65536, keep "newest")

flows, by total run time:
  count   done failed cancel      total       mean        p50        p99  pend mean   pend p50   pend p99  flow
      2      2      0      0     1.50ms    750.0us    500.0us     1.00ms     55.0us     10.0us    100.0us  main
      4      2      1      1     1.30ms    433.3us    400.0us    600.0us     40.0us     40.0us     60.0us  work
      1      0      0      1    300.0us    300.0us    300.0us    300.0us     30.0us     30.0us     30.0us  say "hi" \ ü ☃ 😀
      2      2      0      0    250.0us    125.0us    100.0us    150.0us     10.0us      5.0us     15.0us  leaf
      1      1      0      0     50.0us     50.0us     50.0us     50.0us      250ns      250ns      250ns  tick
(run times from the X slices, pending times from their args.pending_us;
 p50 and p99 are nearest-rank percentiles)
1 execution never started (e without X): counted as cancelled

critical paths of the longest roots (3 of 3; each step: the child that
finished last; share: its run time over the root's):

root 1: main, 1.00ms wall
  step   share        run  id  flow
     0  100.0%     1.00ms  a0000000-0000-4000-8000-000000000001  main
     1   40.0%    400.0us  b0000000-0000-4000-8000-000000000003  work
     2   15.0%    150.0us  c0000000-0000-4000-8000-000000000002  leaf

root 2: main, 500.0us wall
  step   share        run  id  flow
     0  100.0%    500.0us  a0000000-0000-4000-8000-000000000002  main
     1   60.0%    300.0us  e0000000-0000-4000-8000-000000000001  say "hi" \ ü ☃ 😀

root 3: tick, 50.0us wall
  step   share        run  id  flow
     0  100.0%     50.0us  f0000000-0000-4000-8000-000000000001  tick
EOF
sed 1d "$tmp/out" >"$tmp/got"
if ! cmp -s "$tmp/want" "$tmp/got"; then
	fail "basic.json: the summary differs from the one worked out by hand:"
	diff "$tmp/want" "$tmp/got"
fi
expect_in "$tmp/out" "trace: $fix/basic.json (libpumped 0.1.0)" "basic.json"
expect_in "$tmp/err" "warning: $fix/basic.json: 3 events were dropped" \
	"basic.json"

run --roots 1 "$fix/basic.json"
expect_rc 0 "--roots 1"
[ "$(grep -c '^root ' "$tmp/out")" -eq 1 ] || fail "--roots 1: not one root"
expect_in "$tmp/out" "(2 more roots not shown: --roots N)" "--roots 1"
run --roots=0 "$fix/basic.json"
expect_rc 0 "--roots=0"
grep -q '^root ' "$tmp/out" && fail "--roots=0: a root printed"

# A bare array (Chrome's other form), no otherData, a pending_us left
# out, one event without args.id ignored with a warning.
run "$fix/bare-array.json"
expect_rc 0 "bare-array.json"
expect_in "$tmp/out" "dropped_events: 0 (not in otherData)" "bare-array.json"
expect_in "$tmp/out" \
	"      2      1      1      0    350.0us    175.0us    100.0us    250.0us      1.5us      1.5us      1.5us  solo" \
	"bare-array.json"
expect_in "$tmp/out" \
	"     1   40.0%    100.0us  22222222-2222-4222-8222-222222222222  solo" \
	"bare-array.json"
expect_in "$tmp/err" "1 event ignored (the first at byte 455: an X event without args.id)" \
	"bare-array.json"
grep -q "dropped" "$tmp/err" && fail "bare-array.json: a dropped warning"

# stdin as "-"
"$prog" - <"$fix/bare-array.json" >"$tmp/out" 2>/dev/null
rc=$?
expect_rc 0 "stdin"
expect_in "$tmp/out" "trace: -" "stdin"

# ------------------------------------------------------ 2. the SVG

# well_formed SVG WHAT
well_formed() {
	if command -v xmllint >/dev/null 2>&1; then
		xmllint --noout "$1" 2>"$tmp/xmlerr" ||
			fail "$2: not well-formed XML: $(head -c 300 "$tmp/xmlerr")"
	fi
	tail -n 1 "$1" | grep -q '^</svg>$' || fail "$2: no closing </svg>"
}

run --svg "$tmp/basic.svg" "$fix/basic.json"
expect_rc 0 "--svg basic.json"
well_formed "$tmp/basic.svg" "basic.svg"
for want in '>main (2, 1.50ms)</text>' '>work (4, 1.30ms)</text>' \
	'>say &quot;hi&quot; \ ü ☃ 😀 (1, 300.0us)</text>' \
	'>leaf (2, 250.0us)</text>' '>tick (1, 50.0us)</text>' \
	'>worker 0</text>' '>outside thread 0</text>' '>timer</text>' \
	' f" x=' ' c" x=' '<rect class="h" ' '1 never started'; do
	expect_in "$tmp/basic.svg" "$want" "basic.svg"
done
grep -q '"hi"' "$tmp/basic.svg" && fail "basic.svg: a quote not escaped"
# Nine slices: nine bars, the helped ones a row below their helper.
expect_in "$tmp/out" "basic.svg: 9 bars, 0 narrow executions merged" "basic.svg"

run --svg="$tmp/bare.svg" --width 800 --depth 1 "$fix/bare-array.json"
expect_rc 0 "--svg bare-array.json"
well_formed "$tmp/bare.svg" "bare.svg"
expect_in "$tmp/bare.svg" '&lt;main&gt; &amp; &quot;co&quot;' "bare.svg"
expect_in "$tmp/out" "1 bars, 0 narrow executions merged into 0 marks, 1 deeper than 1 levels not drawn" \
	"bare.svg (--depth 1)"

# --------------------------------------------- 3. a large trace

# 100 roots of 900 us on 8 threads, each with 99 children of 8 us spread
# over the threads (on the root's own thread they nest in it, helped),
# every tenth with a helped grandchild; some failed, some cancelled.
awk 'BEGIN {
	printf "{\"otherData\":{\"dropped_events\":0},\"traceEvents\":[\n"
	for (t = 1; t <= 8; t++)
		printf "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":%d,\"args\":{\"name\":\"worker %d\"}},\n", t, t - 1
	n = 0
	for (r = 0; r < 100; r++) {
		rid = sprintf("%08x-0000-4000-8000-000000000000", r)
		printf "{\"ph\":\"X\",\"name\":\"root\",\"cat\":\"exec\",\"ts\":%d.000,\"dur\":900.000,\"pid\":1,\"tid\":%d,\"args\":{\"id\":\"%s\",\"parent\":null,\"status\":\"completed\",\"error\":0,\"pending_us\":1.5}},\n", r * 1000, r % 8 + 1, rid
		n++
		for (c = 0; c < 99; c++) {
			cid = sprintf("%08x-0000-4000-8000-%012x", r, c + 1)
			ts = r * 1000 + 5 + c * 9
			tid = (r + c + 1) % 8 + 1
			st = c % 17 == 0 ? "failed" : c % 23 == 0 ? "cancelled" : "completed"
			printf "{\"ph\":\"X\",\"name\":\"child %d\",\"cat\":\"exec\",\"ts\":%d.250,\"dur\":8.000,\"pid\":1,\"tid\":%d,\"args\":{\"id\":\"%s\",\"parent\":\"%s\",\"status\":\"%s\",\"error\":0,\"pending_us\":%d.5}},\n", c % 5, ts, tid, cid, rid, st, c
			n++
			if (c % 10 == 0) {
				printf "{\"ph\":\"X\",\"name\":\"grandchild\",\"cat\":\"exec\",\"ts\":%d.500,\"dur\":5.000,\"pid\":1,\"tid\":%d,\"args\":{\"id\":\"g%s\",\"parent\":\"%s\",\"status\":\"completed\",\"error\":0,\"pending_us\":0.5}},\n", ts + 1, tid, cid, cid
				n++
			}
		}
	}
	printf "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"libpumped scope\"}}\n]}\n"
}' >"$tmp/big.json"

start=$(date +%s)
run "$tmp/big.json"
expect_rc 0 "big.json"
expect_in "$tmp/out" "11000 executions of 7 flows, 100 roots, 8 threads" "big.json"
expect_in "$tmp/out" "(90 more roots not shown: --roots N)" "big.json"
# Root 1 (ties: the first to start): its last child is the 99th, 8 of
# its 900 us.
expect_in "$tmp/out" \
	"     1    0.9%      8.0us  00000000-0000-4000-8000-000000000063  child 3" \
	"big.json"
run --svg "$tmp/big.svg" "$tmp/big.json"
expect_rc 0 "--svg big.json"
run --svg "$tmp/wide.svg" --width 100000 "$tmp/big.json"
expect_rc 0 "--svg --width 100000 big.json"
end=$(date +%s)
[ $((end - start)) -le 5 ] ||
	fail "big.json: three runs took $((end - start)) s, expected a few"
for f in big wide; do
	well_formed "$tmp/$f.svg" "$f.svg"
	size=$(wc -c <"$tmp/$f.svg")
	[ "$size" -lt 5000000 ] || fail "$f.svg: $size bytes, expected < 5 MB"
done
# 1,400 px for 100 ms: the children (0.1 px) merge into marks; the
# roots remain bars.  At 100,000 px every execution is a bar.
expect_in "$tmp/out" "wide.svg: 11000 bars, 0 narrow" "wide.svg"
run --svg "$tmp/big.svg" "$tmp/big.json"
grep -q "big.svg: 100 bars, 10900 narrow executions merged into [1-9]" \
	"$tmp/out" || fail "big.svg: not 100 bars and marks: $(cat "$tmp/out")"

# ----------------------------------------------- 4. malformed input

# bad FILE MESSAGE WHAT: exit status 1 and MESSAGE, with a byte offset.
bad() {
	run "$1"
	expect_rc 1 "$3"
	expect_in "$tmp/err" "$2" "$3"
	grep -q ': byte [0-9][0-9]*: ' "$tmp/err" ||
		fail "$3: no byte offset in '$(cat "$tmp/err")'"
}

bad "$fix/truncated.json" "byte 218: end of input inside the string that starts at byte 186" \
	"truncated.json"
bad "$fix/bad-escape.json" "invalid escape in a string: backslash followed by 'x'" \
	"bad-escape.json"
bad "$fix/lone-surrogate.json" "unpaired surrogate \\uD83D" "lone-surrogate.json"
bad "$fix/trailing-comma.json" "expected a value, found ']'" \
	"trailing-comma.json"

{ printf '{"traceEvents":'; head -c 100000 /dev/zero | tr '\0' '['; } \
	>"$tmp/deep.json"
bad "$tmp/deep.json" "nesting deeper than 256 levels" "100000 nested arrays"
{ printf '{"traceEvents":[{"ph":"X","args":'; head -c 100000 /dev/zero |
	tr '\0' '{' | sed 's/{/{"a":/g'; } >"$tmp/deep2.json"
bad "$tmp/deep2.json" "nesting deeper than 256 levels" "100000 nested objects"
: >"$tmp/empty.json"
bad "$tmp/empty.json" "expected a JSON object or array, found end of input" \
	"an empty file"
printf '{"traceEvents":[{"name":"\377"}]}' >"$tmp/utf8.json"
bad "$tmp/utf8.json" "invalid UTF-8 in a string" "a byte 0xff in a string"
printf '{"traceEvents":[{"name":"\355\240\200"}]}' >"$tmp/utf8s.json"
bad "$tmp/utf8s.json" "invalid UTF-8 in a string" "a surrogate in UTF-8"
printf '{"traceEvents":[{"name":"a\tb"}]}' >"$tmp/ctl.json"
bad "$tmp/ctl.json" "control character 0x09 in a string" "a raw tab"
printf '{"traceEvents":[{"ts":012}]}' >"$tmp/zero.json"
bad "$tmp/zero.json" "leading zero in a number" "a leading zero"
printf '{"traceEvents":[{"ts":1e999}]}' >"$tmp/huge.json"
bad "$tmp/huge.json" "number out of range" "1e999"
printf '{"traceEvents":[{"ts":1.}]}' >"$tmp/frac.json"
bad "$tmp/frac.json" "expected a digit after '.'" "1."
printf '{"traceEvents":[{"ok":tru}]}' >"$tmp/lit.json"
bad "$tmp/lit.json" "invalid literal (expected true)" "tru"
printf '{"traceEvents":[]} x' >"$tmp/after.json"
bad "$tmp/after.json" "unexpected 'x' after the JSON document" "trailing text"
printf '{"otherData":{}}' >"$tmp/none.json"
bad "$tmp/none.json" "no traceEvents array" "no traceEvents"
printf '\001\002garbage\377\376' >"$tmp/garbage.json"
bad "$tmp/garbage.json" "expected a JSON object or array, found byte 0x01" \
	"garbage"

# Every 13th prefix of a good file is malformed (the last is whole).
size=$(wc -c <"$fix/basic.json")
n=0
while [ "$n" -lt $((size - 2)) ]; do
	head -c "$n" "$fix/basic.json" >"$tmp/prefix.json"
	run "$tmp/prefix.json"
	if [ "$rc" -ne 1 ] || ! grep -q ': byte [0-9]' "$tmp/err"; then
		fail "basic.json cut at $n bytes: exit status $rc, $(cat "$tmp/err")"
		break
	fi
	n=$((n + 13))
done

# ------------------------------------------------------ 6. --merge

# num_of FILE TEXT KEY: the number KEY of the first line of FILE that holds
# TEXT (the merge writes one event per line, without spaces).
num_of() {
	grep -F -- "$2" "$1" | head -n 1 |
		sed -n "s/.*\"$3\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p"
}

# expect_num FILE TEXT KEY WANT WHAT: that number, compared numerically.
expect_num() {
	got=$(num_of "$1" "$2" "$3")
	awk -v g="$got" -v w="$4" 'BEGIN { exit !(g != "" && (g - w) * (g - w) < 1e-12) }' ||
		fail "$5: $3 is '$got', expected $4"
}

ida=a0000000-0000-4000-8000-00000000000
idb=b0000000-0000-4000-8000-00000000000
# By hand: a's base is 1700000000000000123 - 123 = ...000000000, b's
# 1700000000000010005 + 19995 = ...000030000 (its clock 20 us behind):
# b's ts move by 30 us, a's not at all.  Through a double the origins
# would be off by up to 128 ns.
run --merge "$tmp/ab.json" "$fix/merge-a.json" "$fix/merge-b.json"
expect_rc 0 "merge a b"
expect_in "$tmp/out" "$tmp/ab.json: 20 events of 2 files, 3 links across processes" \
	"merge a b"
[ -s "$tmp/err" ] && fail "merge a b: stderr: $(head -c 300 "$tmp/err")"
m=$tmp/ab.json
expect_in "$m" '"otherData":{"producer":"pumped-trace --merge","files":2,"dropped_events":5,"origin_unix_ns":1700000000000000000,"clock_offset_ns":0,"cross_process_links":3,' \
	"merge a b: otherData"
expect_in "$m" '"shift_ns":0,"events":8,"dropped_events":2,"pids":[[0,0]]}' \
	"merge a b: a's input"
expect_in "$m" '"clock_offset_ns":-19995,"shift_ns":30000,"events":12,"dropped_events":3,"pids":[[1,1]]}' \
	"merge a b: b's input"
[ "$(grep -c '^{"ph"' "$m")" -eq 21 ] ||
	fail "merge a b: $(grep -c '^{"ph"' "$m") events, expected 20 and an added s"
# a's events as they were, spelling included; b's moved by 30 us.
expect_in "$m" '"ph":"X","name":"main","cat":"exec","ts":10.0,"dur":1000.0,"pid":0' \
	"merge a b: main"
expect_num "$m" "\"ph\":\"X\",\"name\":\"work\",\"cat\":\"exec\",\"ts\":" ts 110 \
	"merge a b: work 1 (80 + 30)"
expect_num "$m" "\"ph\":\"b\",\"name\":\"work\"" ts 89.999 "merge a b: b (59.999 + 30)"
expect_num "$m" "\"ph\":\"X\",\"name\":\"leaf\"" ts 120 "merge a b: leaf (90 + 30)"
grep -F '"name":"work"' "$m" | grep -F "\"id\":\"${idb}2\"" | grep -qF '"ts":430.123,"dur":10,' ||
	fail "merge a b: work 2 not at 430.123 (400.123 + 30)"
expect_num "$m" "\"ph\":\"f\",\"name\":\"child\",\"cat\":\"child\",\"id\":\"${idb}1\"" ts 110 \
	"merge a b: f of work 1"
expect_in "$m" "\"ph\":\"f\",\"name\":\"child\",\"cat\":\"child\",\"id\":\"${idb}1\",\"ts\":110,\"pid\":1,\"tid\":1" \
	"merge a b: f of work 1 stays"
# The arrows to b's children of a's proxies: on the proxy's pid and tid,
# the time clamped into the proxy: 60 + 30 before 100.5 (the proxy's
# start); 600 + 30 after 500 (its end); the one never written added at
# its child's start.  The arrow inside b (to leaf) stays.
expect_in "$m" "\"ph\":\"s\",\"name\":\"child\",\"cat\":\"child\",\"id\":\"${idb}1\",\"ts\":100.5,\"pid\":0,\"tid\":1}" \
	"merge a b: s of work 1 moved"
expect_in "$m" "\"ph\":\"s\",\"name\":\"child\",\"cat\":\"child\",\"id\":\"${idb}4\",\"ts\":500,\"pid\":0,\"tid\":1}" \
	"merge a b: s of work 4 moved"
expect_in "$m" "{\"ph\":\"s\",\"name\":\"child\",\"cat\":\"child\",\"id\":\"${idb}2\",\"ts\":430.123,\"pid\":0,\"tid\":1," \
	"merge a b: s of work 2 added"
expect_in "$m" "\"ph\":\"s\",\"name\":\"child\",\"cat\":\"child\",\"id\":\"${idb}3\",\"ts\":115,\"pid\":1,\"tid\":1}" \
	"merge a b: s of leaf"
expect_in "$m" "\"ph\":\"s\",\"name\":\"child\",\"cat\":\"child\",\"id\":\"${ida}2\",\"ts\":90.0,\"pid\":0,\"tid\":1}" \
	"merge a b: s of proxy 1"
[ "$(grep -c "\"ph\":\"s\".*\"id\":\"${idb}" "$m")" -eq 4 ] ||
	fail "merge a b: not four s arrows to b's executions"
# Strings escaped exactly, numbers as they were spelled.
expect_in "$m" '"name":"say \"hi\" é 😀\t\u0001/","ts":2000.001,' "merge a b: escapes"
expect_in "$m" '"args":{"n":1e3,"z":-0.0,"big":12345678901234567890,"l":[true,false,null,{},[]]}}' \
	"merge a b: numbers"

# The merged file reads back: its summary, with the links line.
run "$m"
expect_rc 0 "summary of merge a b"
expect_in "$tmp/out" "21 events, 7 executions of 4 flows, 1 root, 2 threads in 2 processes" \
	"summary of merge a b"
expect_in "$tmp/out" "links across processes: 3" "summary of merge a b"
expect_in "$tmp/out" "dropped_events: 5" "summary of merge a b"
expect_in "$tmp/out" "trace: $m (pumped-trace --merge)" "summary of merge a b"
expect_in "$tmp/err" "warning: $m: 5 events were dropped (buffers full): the" \
	"summary of merge a b"
# One process: no links line.
run "$fix/merge-b.json"
expect_rc 0 "summary of merge-b.json"
grep -q "links across" "$tmp/out" && fail "merge-b.json: a links line"
run --svg "$tmp/ab.svg" "$m"
expect_rc 0 "--svg of merge a b"
well_formed "$tmp/ab.svg" "ab.svg"
expect_in "$tmp/ab.svg" ">rank 0: worker 0</text>" "ab.svg"
expect_in "$tmp/ab.svg" ">rank 1: worker 0</text>" "ab.svg"

# c reuses b's pid 1 (it gets its os_pid, 300) and, with an event that
# has none, a's 0 (os_pid taken: the next above all, 7 being old's: 8).
# old has no origin: its times stay.  c's origin is 1 ms after a's.
run --merge "$tmp/abco.json" "$fix/merge-a.json" "$fix/merge-b.json" \
	"$fix/merge-c.json" "$fix/merge-old.json"
expect_rc 0 "merge a b c old"
m=$tmp/abco.json
expect_in "$tmp/err" "note: $fix/merge-c.json uses pid 1, as $fix/merge-b.json does: its events get pid 300" \
	"merge a b c old"
expect_in "$tmp/err" "note: $fix/merge-c.json uses pid 0, as $fix/merge-a.json does: its events get pid 8" \
	"merge a b c old"
expect_in "$tmp/err" "warning: $fix/merge-old.json: no otherData.origin_unix_ns" \
	"merge a b c old"
expect_in "$m" '"files":4,"dropped_events":5,"origin_unix_ns":1700000000000000000,' \
	"merge a b c old: otherData"
expect_in "$m" '"shift_ns":1000000,"events":3,"dropped_events":0,"pids":[[1,300],[0,8]]}' \
	"merge a b c old: c's input"
expect_in "$m" '"version":"0.0.9","shift_ns":0,"events":1,"dropped_events":0,"pids":[[7,7]]}' \
	"merge a b c old: old's input"
expect_in "$m" '{"ph":"M","name":"process_name","pid":300,"tid":0,' "merge a b c old: c's M"
expect_num "$m" '"name":"other"' ts 1001.5 "merge a b c old: other (1.5 + 1000)"
expect_num "$m" '"name":"other"' pid 300 "merge a b c old: other's pid"
expect_num "$m" '"name":"timeout"' ts 1003.25 "merge a b c old: timeout"
expect_num "$m" '"name":"timeout"' pid 8 "merge a b c old: timeout's pid added"
expect_in "$m" '"name":"old","ts":5.0,"dur":1.0,"pid":7,' "merge a b c old: old"
run "$m"
expect_rc 0 "summary of merge a b c old"
expect_in "$tmp/out" "in 5 processes" "summary of merge a b c old"
expect_in "$tmp/out" "links across processes: 3" "summary of merge a b c old"

# Only files without an origin: none in the output either.
run --merge - "$fix/merge-old.json"
expect_rc 0 "merge old"
grep -q origin_unix_ns "$tmp/out" && fail "merge old: an origin_unix_ns"
expect_in "$tmp/out" '"cross_process_links":0' "merge old"

# Malformed input: exit 1, the file and byte named, OUT untouched and
# nothing left beside it.
echo "before" >"$tmp/keep.json"
run --merge "$tmp/keep.json" "$fix/merge-a.json" "$fix/merge-bad.json"
expect_rc 1 "merge a bad"
expect_in "$tmp/err" "$fix/merge-bad.json:3:86: byte 240: expected a member name" \
	"merge a bad"
[ "$(cat "$tmp/keep.json")" = before ] || fail "merge a bad: OUT changed"
run --merge "$tmp/new.json" "$fix/merge-a.json" "$fix/truncated.json"
expect_rc 1 "merge a truncated"
expect_in "$tmp/err" "truncated.json:" "merge a truncated"
[ -e "$tmp/new.json" ] && fail "merge a truncated: OUT written"
ls "$tmp" | grep -q 'tmp$' && fail "merge: a temporary file left: $(ls "$tmp")"
run --merge "$tmp/new.json" "$fix/merge-a.json" "$tmp/no-such-file.json"
expect_rc 1 "merge a missing file"
run --merge "$tmp/no-such-dir/x.json" "$fix/merge-a.json"
expect_rc 1 "merge into an unwritable OUT"

# To stdout, read back from stdin; a merge of a merge changes nothing
# (one file: no shift, pids kept, ts spelled as they were), over a
# regular OUT that is replaced.
"$prog" --merge - "$fix/merge-a.json" "$fix/merge-b.json" 2>/dev/null |
	"$prog" - >"$tmp/out" 2>&1
expect_in "$tmp/out" "links across processes: 3" "merge to stdout"
run --merge "$tmp/keep.json" "$tmp/ab.json"
expect_rc 0 "merge of a merge"
sed -n '/^"traceEvents"/,$p' "$tmp/ab.json" >"$tmp/ev1"
sed -n '/^"traceEvents"/,$p' "$tmp/keep.json" >"$tmp/ev2"
cmp -s "$tmp/ev1" "$tmp/ev2" || fail "merge of a merge: the events differ"
expect_in "$tmp/keep.json" '"origin_unix_ns":1700000000000000000,"clock_offset_ns":0,"cross_process_links":0,' \
	"merge of a merge"
# basic.json (no origin) through the merge: the same summary.
run "$fix/basic.json"
sed -n '/^flows/,$p' "$tmp/out" >"$tmp/sum1"
run --merge "$tmp/basic-m.json" "$fix/basic.json"
expect_rc 0 "merge basic.json"
run "$tmp/basic-m.json"
sed -n '/^flows/,$p' "$tmp/out" >"$tmp/sum2"
cmp -s "$tmp/sum1" "$tmp/sum2" || fail "merge basic.json: the summary differs"

# The large trace with itself: its pid renamed, every event twice.
run --merge "$tmp/big2.json" "$tmp/big.json" "$tmp/big.json"
expect_rc 0 "merge big big"
expect_in "$tmp/out" "22018 events of 2 files, 0 links" "merge big big"
run "$tmp/big2.json"
expect_in "$tmp/out" "16 threads in 2 processes" "summary of merge big big"

# --------------------------------------------------------- 5. usage

run --help
expect_rc 0 "--help"
expect_in "$tmp/out" "usage: pumped-trace" "--help"
run
expect_rc 2 "no arguments"
run --bogus "$fix/basic.json"
expect_rc 2 "--bogus"
expect_in "$tmp/err" "unknown option '--bogus'" "--bogus"
run --roots x "$fix/basic.json"
expect_rc 2 "--roots x"
run --svg
expect_rc 2 "--svg without a value"
run --depth 65 "$fix/basic.json"
expect_rc 2 "--depth 65"
run "$fix/basic.json" "$fix/basic.json"
expect_rc 2 "two files"
run --merge
expect_rc 2 "--merge without a value"
run --merge "$tmp/x.json"
expect_rc 2 "--merge without a FILE"
run --merge "$tmp/x.json" --svg "$tmp/x.svg" "$fix/basic.json"
expect_rc 2 "--merge with --svg"
expect_in "$tmp/err" "--merge takes no --svg" "--merge with --svg"
run "$tmp/no-such-file.json"
expect_rc 1 "a missing file"
expect_in "$tmp/err" "no-such-file.json: " "a missing file"
run --svg "$tmp/no-such-dir/x.svg" "$fix/basic.json"
expect_rc 1 "an unwritable SVG"

if [ "$fails" -ne 0 ]; then
	echo "check-pumped-trace: $fails failure(s)"
	exit 1
fi
echo "check-pumped-trace: all passed"
exit 0
