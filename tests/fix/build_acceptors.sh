#!/usr/bin/env bash
# Build QuickFIX's example acceptors, the FIX counterparties of tests/fix:
#   tests/fix/build_acceptors.sh [OUT_DIR]   (default .tools/quickfix-<hash>)
# prints the directory holding `executor` and `ordermatch`.
#
# Sources come from Debian's libquickfix-doc (examples) and libquickfix-dev
# (headers, library); `make test-fix-packages` installs them. ordermatch is
# patched to FIX 4.4 (ordermatch-fix44.patch). The output is keyed by a hash of
# this script, the patch and the package versions, so it is built once (about
# a minute on 2 cores) and rebuilt only when one of them changes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
examples=/usr/share/doc/libquickfix-doc/examples
if [[ ! -d $examples/executor/C++ || ! -f /usr/include/quickfix/Session.h ]]; then
	echo "build_acceptors: QuickFIX sources missing; install libquickfix-dev and" \
		"libquickfix-doc (make test-fix-packages)" >&2
	exit 1
fi
versions="$(dpkg-query -W -f='${Version}' libquickfix-dev libquickfix-doc 2>/dev/null || true)"
key="$(cat "$0" "$here/ordermatch-fix44.patch" <(echo "$versions") | sha256sum | cut -c1-16)"
out="${1:-$root/.tools/quickfix-$key}"
if [[ -x $out/executor && -x $out/ordermatch ]]; then
	echo "$out"
	exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unpack() { # copy an example's sources (some are gzipped in the package)
	local from=$1 to=$2
	mkdir -p "$to"
	for file in "$from"/*.cpp "$from"/*.h "$from"/*.cpp.gz; do
		[[ -e $file ]] || continue
		case $file in
		*.gz) gzip -dc "$file" >"$to/$(basename "${file%.gz}")" ;;
		*) cp "$file" "$to/" ;;
		esac
	done
	: >"$to/config.h" # the examples include it for autoconf's HAVE_* macros: none needed
}
unpack "$examples/executor/C++" "$work/executor"
unpack "$examples/ordermatch" "$work/ordermatch"
patch --quiet -d "$work/ordermatch" -p1 <"$here/ordermatch-fix44.patch"

flags=(-std=c++11 -O1 -w -pthread)
mkdir -p "$work/bin"
# Both at once: two cores.
(cd "$work/executor" && g++ "${flags[@]}" -I. -o "$work/bin/executor" ./*.cpp -lquickfix) &
executor=$!
(cd "$work/ordermatch" && g++ "${flags[@]}" -I. -o "$work/bin/ordermatch" ./*.cpp -lquickfix)
wait "$executor"
mkdir -p "$(dirname "$out")"
rm -rf "$out.tmp" && mv "$work/bin" "$out.tmp" && rm -rf "$out" && mv "$out.tmp" "$out"
if (($# == 0)); then
	# Older builds (other keys) are dropped: only the current one is ever used.
	find "$root/.tools" -maxdepth 1 -name 'quickfix-*' ! -path "$out" -exec rm -rf {} +
fi
echo "$out"
