#!/bin/sh
# Run in the kvm-launch images (docker/Dockerfile's last step, and docker/test-container.sh): every dynamically
# linked program and module in the image finds each shared library it needs, with the image's own loader.
# The images hold no Debian base, so a library missing from docker/slim-root.sh's closure would show only when
# that program runs; this finds it at build time. Prints the count checked; exits 1 naming what is missing.
loader=/lib64/ld-linux-x86-64.so.2
checked=0 missing=0
number() { od -A n -t "u$1" -j "$2" -N "$1" "$3" | tr -d ' '; }
has_interpreter() { # has_interpreter FILE: the ELF file has a PT_INTERP program header (a dynamically linked program)
	local offset size count i=0
	offset=$(number 8 32 "$1") size=$(number 2 54 "$1") count=$(number 2 56 "$1")
	while [ "$i" -lt "$count" ]; do
		[ "$(number 4 $((offset + i * size)) "$1")" = 3 ] && return 0
		i=$((i + 1))
	done
	return 1
}
for file in $(find / -xdev -type f ! -path '/proc/*' ! -path '/sys/*'); do
	[ "$(head -c 4 "$file" | tail -c 3)" = ELF ] || continue
	# A program has a loader (PT_INTERP); a statically linked one (busybox) has none and is not checked.
	case $file in
	*.so | *.so.*) ;;
	*) has_interpreter "$file" || continue ;;
	esac
	checked=$((checked + 1))
	if ! out=$("$loader" --list "$file" 2>&1); then
		echo "check-image: $loader --list $file failed: $out" >&2
		missing=$((missing + 1))
	elif echo "$out" | grep -q 'not found'; then
		echo "check-image: $file needs: $(echo "$out" | grep 'not found' | awk '{ print $1 }' | tr '\n' ' ')" >&2
		missing=$((missing + 1))
	fi
done
echo "check-image: $checked dynamically linked files, $missing missing a library"
[ "$checked" -gt 0 ] && [ "$missing" -eq 0 ]
