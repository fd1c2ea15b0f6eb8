#define _GNU_SOURCE
#include "CLibvirtShims.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

// Steps reported back to the parent: an index into this table.
static const char *const kvml_steps[] = {
    "setsid", "unshare(CLONE_NEWNS)", "make / private", "mount the /dev tmpfs", "copy /dev",
    "create a device node", "move the private /dev", "bind mount", "redirect stdio", "execve",
};

struct kvml_failure { int step; int error; };

// Joins `dir` and `name` into `out` (size `size`); 0 on success.
static int kvml_join(char *out, size_t size, const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    if (a + 1 + b + 1 > size) { errno = ENAMETOOLONG; return -1; }
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, name, b + 1);
    return 0;
}

// Copies the entries of /dev into `stage`: only system calls, no allocation.
static int kvml_copy_dev(const char *stage) {
    int dir = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    char buffer[8192];
    for (;;) {
        long count = syscall(SYS_getdents64, dir, buffer, sizeof buffer);
        if (count < 0) { close(dir); return -1; }
        if (count == 0) break;
        for (long offset = 0; offset < count;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *entry =
                (void *)(buffer + offset);
            offset += entry->reclen;
            const char *name = entry->name;
            if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
            char source[512], target[512];
            if (kvml_join(source, sizeof source, "/dev", name) != 0 || kvml_join(target, sizeof target, stage, name) != 0) continue;
            struct stat info;
            if (fstatat(dir, name, &info, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (S_ISCHR(info.st_mode) || S_ISBLK(info.st_mode)) {
                if (mknod(target, info.st_mode & (S_IFMT | 07777), info.st_rdev) != 0) { close(dir); return -1; }
            } else if (S_ISDIR(info.st_mode)) {
                if (mkdir(target, info.st_mode & 07777) != 0) { close(dir); return -1; }
                // Submounts (pts, shm, mqueue, hugepages) come along; plain directories are bound too.
                if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) != 0) { close(dir); return -1; }
            } else if (S_ISLNK(info.st_mode)) {
                char link[512];
                ssize_t length = readlinkat(dir, name, link, sizeof link - 1);
                if (length < 0) continue;
                link[length] = 0;
                if (symlink(link, target) != 0) { close(dir); return -1; }
            }
        }
    }
    close(dir);
    return 0;
}

static void kvml_child(int report, const char *path, char *const argv[], char *const envp[],
                       const char *const bind_sources[], const char *const bind_targets[], int bind_count,
                       const char *dev_stage, const struct kvml_device_node *nodes, int node_count, int output_fd) {
    struct kvml_failure failure = {0, 0};
#define KVML_STEP(n, call) do { failure.step = (n); if ((call) != 0) goto fail; } while (0)
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    KVML_STEP(0, setsid() < 0 ? -1 : 0);
    KVML_STEP(1, unshare(CLONE_NEWNS));
    KVML_STEP(2, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
    if (dev_stage != NULL) {
        KVML_STEP(3, mount("tmpfs", dev_stage, "tmpfs", MS_NOSUID, "mode=0755"));
        KVML_STEP(4, kvml_copy_dev(dev_stage));
        for (int i = 0; i < node_count; i++) {
            char target[512];
            KVML_STEP(5, kvml_join(target, sizeof target, dev_stage, nodes[i].name));
            unlink(target);
            KVML_STEP(5, mknod(target, S_IFCHR | 0600, nodes[i].device));
        }
        KVML_STEP(6, mount(dev_stage, "/dev", NULL, MS_MOVE, NULL));
    }
    for (int i = 0; i < bind_count; i++) {
        failure.step = 7;
        if (mkdir(bind_targets[i], 0755) != 0 && errno != EEXIST) goto fail;
        KVML_STEP(7, mount(bind_sources[i], bind_targets[i], NULL, MS_BIND, NULL));
    }
    failure.step = 8;
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(output_fd, 1) < 0 || dup2(output_fd, 2) < 0) goto fail;
    // Every other descriptor goes, except the report pipe (close-on-exec: it closes at execve).
    for (int fd = 3; fd < 65536; fd++) {
        if (fd != report) close(fd);
    }
    failure.step = 9;
    execve(path, argv, envp);
fail:
    failure.error = errno;
    (void)!write(report, &failure, sizeof failure);
    _exit(127);
#undef KVML_STEP
}

pid_t kvml_spawn_private_mounts(const char *path, char *const argv[], char *const envp[],
                                const char *const bind_sources[], const char *const bind_targets[], int bind_count,
                                const char *dev_stage, const struct kvml_device_node *nodes, int node_count,
                                int output_fd, const char **failed_step) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        close(pipe_fds[0]);
        kvml_child(pipe_fds[1], path, argv, envp, bind_sources, bind_targets, bind_count, dev_stage, nodes, node_count,
                   output_fd);
        _exit(127);
    }
    close(pipe_fds[1]);
    struct kvml_failure failure;
    ssize_t count;
    do {
        count = read(pipe_fds[0], &failure, sizeof failure);
    } while (count < 0 && errno == EINTR);
    close(pipe_fds[0]);
    if (count == (ssize_t)sizeof failure) {
        // The child failed before execve and has exited: reap it here, nobody else knows it.
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        if (failed_step != NULL) *failed_step = kvml_steps[failure.step];
        errno = failure.error;
        return -1;
    }
    return pid;
}
