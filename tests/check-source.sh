#!/bin/sh
# check-source.sh: static checks of the source tree, run by `make check`.
#
# 1. Layering.  docs/ARCHITECTURE.md's layer table (between the
#    "layers:begin" and "layers:end" markers) gives every module of src/ a
#    rank.  A file may include only its own module's header and headers of
#    modules of a lower rank, and every src/ file must be in the table.
#    Since the build refuses implicit declarations and requires a prototype
#    for every external function (-Wmissing-prototypes, each in its own
#    module's header), a file can only call what it includes: no call goes
#    to a module of the same or a higher rank.
# 2. Error table.  Every PF_E* code include/pumped.h defines (but PF_EUSER,
#    the start of the flows' own range) has its entry in src/errors.h's
#    PF__ERRORS, from which pf_strerror is generated.
# Exit 0 when all hold, 1 with one line per violation otherwise.
# 3. The check itself: run on a copy of the tree with one violation of each
#    kind planted, it must fail and name each (a check that cannot fail
#    proves nothing).
set -u
top=${srcdir:-.}/
[ -f "${top}src/ctx.c" ] || top=$(dirname "$0")/../
if [ -z "${PF_CHECK_SOURCE_PLANTED:-}" ]; then
	tmp=$(mktemp -d) || exit 1
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/src" "$tmp/docs" "$tmp/include"
	cp "${top}"src/*.[ch] "$tmp/src/"
	cp "${top}docs/ARCHITECTURE.md" "$tmp/docs/"
	cp "${top}include/pumped.h" "$tmp/include/"
	printf '#include "scope.h"\n' >>"$tmp/src/tag.c"   # a call up
	: >"$tmp/src/stray.c"                                # not in the table
	sed 's/^#define PF_ENOENT .*/&\n#define PF_EPLANTED (-99)/' \
		"${top}include/pumped.h" >"$tmp/include/pumped.h"
	out=$(PF_CHECK_SOURCE_PLANTED=1 srcdir="$tmp" sh "$0" 2>&1)
	if [ $? -eq 0 ] ||
		! printf '%s\n' "$out" | grep -q 'tag.c (layer .*) includes scope.h' ||
		! printf '%s\n' "$out" | grep -q "module 'stray' is not in" ||
		! printf '%s\n' "$out" | grep -q 'PF_EPLANTED'; then
		echo "check-source: the planted violations were not all found:"
		printf '%s\n' "$out"
		exit 1
	fi
fi
arch=${top}docs/ARCHITECTURE.md
fail=0

ranks=$(sed -n '/layers:begin/,/layers:end/p' "$arch" |
	awk -F'|' '$2 ~ /^ *[0-9]+\.[0-9]+ *$/ {
		gsub(/ /, "", $2); n = split($3, m, "`")
		for (i = 2; i <= n; i += 2) print m[i], $2 }')
if [ -z "$ranks" ]; then
	echo "check-source: no layer table in $arch"
	exit 1
fi
rank_of() { printf '%s\n' "$ranks" | awk -v m="$1" '$1 == m { print $2 }'; }

for f in "${top}"src/*.c "${top}"src/*.h; do
	base=$(basename "$f")
	mod=${base%.*}
	r=$(rank_of "$mod")
	if [ -z "$r" ]; then
		echo "check-source: src/$base: module '$mod' is not in the layer table"
		fail=1
		continue
	fi
	for inc in $(sed -n 's/^#[ 	]*include[ 	]*"\([^"]*\)".*/\1/p' "$f"); do
		case $inc in config.h | pumped.h | pumped/*) continue ;; esac
		im=${inc%.h}
		[ "$im" = "$mod" ] && continue
		ir=$(rank_of "$im")
		if [ -z "$ir" ]; then
			echo "check-source: src/$base includes $inc, not in the layer table"
			fail=1
		elif ! awk -v a="$ir" -v b="$r" 'BEGIN { exit !(a + 0 < b + 0) }'; then
			echo "check-source: src/$base (layer $r) includes $inc (layer $ir): calls must go down"
			fail=1
		fi
	done
done

for code in $(sed -n 's/^#define \(PF_E[A-Z]*\) *(-[0-9]*).*/\1/p' "${top}include/pumped.h"); do
	[ "$code" = PF_EUSER ] && continue
	if ! grep -q "X($code," "${top}src/errors.h"; then
		echo "check-source: $code (pumped.h) has no entry in src/errors.h's PF__ERRORS"
		fail=1
	fi
done

[ $fail -eq 0 ] && echo "check-source: layering and error table hold"
exit $fail
