// QEMU: placeholder until its issue lands.
