/*
 * qemu-stub: stands in for QEMU (LAUNCHER=...) so the benchmarks can see the exact moment a
 * launcher starts "QEMU", without waiting for a guest.
 *
 * On start it writes one line to the file named by $KLB_MARK:
 *     <CLOCK_REALTIME seconds.nanoseconds> <pid> <open descriptors above 2> <argument count>
 * then, by $KLB_STUB:
 *     exit (default)  exits 0 at once: the launcher sees its "VM" power off and cleans up;
 *     hold            waits for SIGTERM or SIGINT, then exits 0;
 *     exec:PATH       executes PATH with the same arguments and descriptors (the real QEMU).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int count_descriptors(void) {
	DIR *directory = opendir("/proc/self/fd");
	if (!directory) return -1;
	int own = dirfd(directory), count = 0;
	struct dirent *entry;
	while ((entry = readdir(directory))) {
		int fd = atoi(entry->d_name);
		if (entry->d_name[0] != '.' && fd > 2 && fd != own) count++;
	}
	closedir(directory);
	return count;
}

int main(int argc, char **argv) {
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	const char *mark = getenv("KLB_MARK");
	if (mark && *mark) {
		char line[128];
		int length = snprintf(line, sizeof line, "%lld.%09ld %d %d %d\n", (long long)now.tv_sec, now.tv_nsec,
		                      (int)getpid(), count_descriptors(), argc - 1);
		int fd = open(mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, line, (size_t)length) != length) {
			perror("qemu-stub: cannot write $KLB_MARK");
			return 2;
		}
		close(fd);
	}
	const char *mode = getenv("KLB_STUB");
	if (!mode || !*mode || strcmp(mode, "exit") == 0) return 0;
	if (strcmp(mode, "hold") == 0) {
		sigset_t set;
		int signal_number;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_BLOCK, &set, NULL);
		sigwait(&set, &signal_number);
		return 0;
	}
	if (strncmp(mode, "exec:", 5) == 0) {
		argv[0] = (char *)(mode + 5);
		execv(mode + 5, argv);
		perror("qemu-stub: exec");
		return 127;
	}
	fprintf(stderr, "qemu-stub: KLB_STUB=%s is not exit, hold or exec:PATH\n", mode);
	return 2;
}
