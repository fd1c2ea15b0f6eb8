#!/bin/bash
# Run by docker/Dockerfile in its build stage (Debian with the runtime packages installed): copies what the image
# runs into a root folder that the final stage (FROM scratch) copies as one layer. Nothing is listed by hand
# except the programs: every shared library comes from `ldd` of the files copied (the loader's own closure,
# computed here at build time), so a library that a new Debian version adds or drops follows by itself.
#
# Usage: slim-root.sh [--libraries LIBROOT] [--skip ROOT]... ROOT ITEM...
#   ITEM   /absolute/path      a file, symbolic link (its target too) or folder, copied to ROOT with the same path
#          package:NAME        every file and folder the Debian package NAME installed (what dpkg's excludes
#                              left on disk: no documentation)
#          needs:/path         only the shared libraries of that program (e.g. a binary the Dockerfile copies
#                              into a later layer itself)
#          folders:NAME        only the folders of package NAME (base-files: the usual /var/cache, /var/log, …)
#          status:NAME         record package NAME (below) though no copied file is its own (a file its
#                              scripts generate, like ca-certificates' bundle)
#   --libraries LIBROOT  the shared libraries go to LIBROOT instead of ROOT (one layer for the libraries of all)
#   --skip ROOT          a path already present under ROOT is not copied again (a layer on top of others)
# Paths are canonical (merged /usr: /lib/x86_64-linux-gnu/libc.so.6 lands in /usr/lib/x86_64-linux-gnu).
# For each package whose files were copied, ROOT/var/lib/dpkg/status.d/NAME holds its dpkg status entry
# (what image scanners read in images without dpkg).
set -euo pipefail
libroot='' skips=()
while [[ ${1:-} == --* ]]; do
	case $1 in
	--libraries) libroot=$2; shift 2 ;;
	--skip) skips+=("$2"); shift 2 ;;
	*) echo "slim-root: unknown option $1" >&2; exit 2 ;;
	esac
done
root=$1
shift
libroot=${libroot:-$root}
mkdir -p "$root" "$libroot"
# The merged-/usr layout of Debian 12: the top-level folders are links into /usr.
for link in bin sbin lib lib64; do
	for r in "$root" "$libroot"; do
		[[ -e $r/$link || -L $r/$link ]] || { mkdir -p "$r/usr/$link"; ln -s "usr/$link" "$r/$link"; }
	done
done

elves=() copied=() recorded=()
canonical() { # the path with its folder's links resolved (the file itself may be a link)
	local dir
	dir=$(realpath -m "$(dirname "$1")")
	echo "${dir%/}/$(basename "$1")"
}
skipped() {
	local r
	for r in "${skips[@]}"; do [[ -e $r$1 || -L $r$1 ]] && return 0; done
	return 1
}
is_elf() { [[ -f $1 && ! -L $1 ]] && cmp -s -n 4 "$1" <(printf '\177ELF'); }  # no NUL bytes through $(…)
put() { # put PATH DEST: copy one path into DEST (a root), links with their targets
	local path dest=$2 target
	path=$(canonical "$1")
	[[ -e $path || -L $path ]] || return 0
	skipped "$path" && return 0
	[[ -e $dest$path || -L $dest$path ]] && return 0
	if [[ -L $path ]]; then
		mkdir -p "$dest$(dirname "$path")"
		cp -P "$path" "$dest$path"
		target=$(realpath -m "$path")
		put "$target" "$dest"
	elif [[ -d $path ]]; then
		mkdir -p "$dest$path"
		chmod --reference="$path" "$dest$path"
	else
		mkdir -p "$dest$(dirname "$path")"
		cp -p "$path" "$dest$path"
		copied+=("$path")
		is_elf "$path" && elves+=("$path")
	fi
	return 0
}
put_tree() { # a folder and everything under it
	local entry
	while IFS= read -r -d '' entry; do put "$entry" "$root"; done < <(find "$(canonical "$1")" -print0)
}

for item in "$@"; do
	case $item in
	package:*)
		while IFS= read -r path; do
			[[ $path == /. ]] && continue
			put "$path" "$root"
		done < <(dpkg -L "${item#package:}")
		;;
	folders:*)
		while IFS= read -r path; do
			[[ $path == /. || -L $path || ! -d $path ]] || put "$path" "$root"
		done < <(dpkg -L "${item#folders:}")
		;;
	needs:*)
		elves+=("${item#needs:}")
		;;
	status:*)
		recorded+=("${item#status:}")
		;;
	/*)
		if [[ -d $item && ! -L $item ]]; then put_tree "$item"; else put "$item" "$root"; fi
		;;
	*) echo "slim-root: $item is neither /path, package:NAME nor needs:/path" >&2; exit 2 ;;
	esac
done

# The shared-library closure of every program and module copied: ldd lists the whole closure (and the loader).
if ((${#elves[@]})); then
	for elf in "${elves[@]}"; do
		if ! out=$(ldd "$elf" 2>&1); then
			grep -q 'not a dynamic executable\|statically linked' <<<"$out" && continue
			echo "slim-root: ldd $elf failed: $out" >&2
			exit 1
		fi
		if grep -q 'not found' <<<"$out"; then
			echo "slim-root: $elf needs libraries that are not installed:" >&2
			grep 'not found' <<<"$out" >&2
			exit 1
		fi
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
	done | sort -u | while IFS= read -r library; do
		printf '%s\0' "$library"
	done >"$root.libraries"
	while IFS= read -r -d '' library; do
		put "$library" "$libroot"
	done <"$root.libraries"
	rm -f "$root.libraries"
fi

# The dpkg status entry of each package a copied file (or library) belongs to.
record() { # record ROOT: status.d entries for the regular files under ROOT
	local r=$1 package
	mkdir -p "$r/var/lib/dpkg/status.d"
	# (dpkg knows some files by their unmerged path: /lib/x86_64-linux-gnu/libc.so.6)
	(cd "$r" && find . -xdev -type f ! -path './var/lib/dpkg/*' -printf '/%P\n' | sed 'p; s,^/usr/\(lib\|bin\|sbin\)/,/\1/,') |
		{ xargs -r dpkg -S 2>/dev/null || true; } | sed 's/: .*//; s/, /\n/g' | { cat; [[ $r != "$root" || ${#recorded[@]} == 0 ]] || printf '%s\n' "${recorded[@]}"; } | sort -u |
		while IFS= read -r package; do
			dpkg-query -s "$package" >"$r/var/lib/dpkg/status.d/${package%%:*}"
		done
}
record "$root"
[[ $libroot == "$root" ]] || record "$libroot"
