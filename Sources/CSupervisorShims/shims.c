#define _GNU_SOURCE
#include "CSupervisorShims.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

int kvml_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL);
}

int kvml_is_child_subreaper(void) {
    int flag = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, (unsigned long)&flag, 0UL, 0UL, 0UL) != 0) {
        return -1;
    }
    return flag != 0;
}

int kvml_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int kvml_make_signal_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    int flags = fcntl(fds[1], F_GETFL);
    if (flags < 0 || fcntl(fds[1], F_SETFL, flags | O_NONBLOCK) != 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return 0;
}

static volatile sig_atomic_t signal_pipe_fd = -1;

static void forward_signal(int signo) {
    int saved_errno = errno;
    unsigned char byte = (unsigned char)signo;
    int fd = signal_pipe_fd;
    if (fd >= 0) {
        // A full pipe means earlier signals are still unread; dropping this byte
        // loses nothing the reader would act on differently.
        (void)!write(fd, &byte, 1);
    }
    errno = saved_errno;
}

int kvml_install_signal_pipe(int write_fd, const int *signals, int count) {
    signal_pipe_fd = write_fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < count; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) {
            return -1;
        }
    }
    return 0;
}

int kvml_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}
