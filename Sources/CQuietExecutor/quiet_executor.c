// A quiet executor for Swift concurrency: the global executor (a fixed pool of worker threads), delayed
// jobs (one timer thread) and the main thread draining libdispatch's main queue itself, installed through
// the Swift runtime's executor hooks. Every thread sleeps with no timeout unless a delayed job is due, so
// an idle launcher is never woken.
//
// Why: on Linux the default global executor is libdispatch's thread pool, whose worker-pool monitor
// (swift-corelibs-libdispatch, src/event/workqueue.c) arms a one-second timer on its manager thread
// the first time a worker runs and never disarms it: one wake-up per second for the process's life.
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "CQuietExecutor.h"

#define SWIFTCC __attribute__((swiftcall))

// The Swift runtime's ABI (swift/Runtime/Concurrency.h, swift/ABI/Executor.h). A job is opaque here.
typedef struct KvmlJob KvmlJob;
// SerialExecutorRef: an identity and a witness-table word; passed as two registers.
typedef struct { void *identity; uintptr_t implementation; } KvmlExecutorRef;

typedef SWIFTCC void (*enqueue_original)(KvmlJob *job);
typedef SWIFTCC void (*enqueue_delay_original)(unsigned long long delay, KvmlJob *job);
typedef SWIFTCC void (*enqueue_deadline_original)(long long sec, long long nsec, long long tsec, long long tnsec,
                                                  int clock, KvmlJob *job);
typedef SWIFTCC void (*drain_original)(void);
typedef SWIFTCC void (*drain_override)(drain_original original);

extern SWIFTCC void (*swift_task_enqueueGlobal_hook)(KvmlJob *job, enqueue_original original);
extern SWIFTCC void (*swift_task_enqueueGlobalWithDelay_hook)(unsigned long long delay, KvmlJob *job,
                                                              enqueue_delay_original original);
extern SWIFTCC void (*swift_task_enqueueGlobalWithDeadline_hook)(long long sec, long long nsec, long long tsec,
                                                                 long long tnsec, int clock, KvmlJob *job,
                                                                 enqueue_deadline_original original);
extern SWIFTCC void (*swift_task_asyncMainDrainQueue_hook)(drain_original original, drain_override compat);

extern SWIFTCC void swift_job_run(KvmlJob *job, void *identity, uintptr_t implementation);
extern void swift_get_time(long long *seconds, long long *nanoseconds, int clock);

// A FIFO of jobs; its node is allocated (a job's own scheduler-private words are the runtime's business).
struct node { KvmlJob *job; struct node *next; unsigned long long due; };
struct queue { pthread_mutex_t lock; pthread_cond_t ready; struct node *head, *tail; };

static struct queue global_queue = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL };
// Delayed jobs, sorted by due time (CLOCK_MONOTONIC nanoseconds); the timer thread waits for the first.
static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_changed;
static struct node *timers;

static struct node *make_node(KvmlJob *job) {
    struct node *node = malloc(sizeof *node);
    if (node == NULL) abort();  // like the runtime: no way to run the job
    node->job = job;
    node->next = NULL;
    node->due = 0;
    return node;
}

static pthread_once_t started = PTHREAD_ONCE_INIT;
static void start_threads(void);

static void push(struct queue *queue, KvmlJob *job) {
    struct node *node = make_node(job);
    pthread_mutex_lock(&queue->lock);
    if (queue->tail) queue->tail->next = node; else queue->head = node;
    queue->tail = node;
    pthread_cond_signal(&queue->ready);
    pthread_mutex_unlock(&queue->lock);
}

static KvmlJob *pop(struct queue *queue) {
    pthread_mutex_lock(&queue->lock);
    while (queue->head == NULL) pthread_cond_wait(&queue->ready, &queue->lock);
    struct node *node = queue->head;
    queue->head = node->next;
    if (queue->head == NULL) queue->tail = NULL;
    pthread_mutex_unlock(&queue->lock);
    KvmlJob *job = node->job;
    free(node);
    return job;
}

static unsigned long long monotonic_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
}

static void *global_worker(void *unused) {
    (void)unused;
    for (;;) swift_job_run(pop(&global_queue), NULL, 0);  // the generic executor
    return NULL;
}

static void *timer_worker(void *unused) {
    (void)unused;
    pthread_mutex_lock(&timer_lock);
    for (;;) {
        if (timers == NULL) {
            pthread_cond_wait(&timer_changed, &timer_lock);
            continue;
        }
        unsigned long long now = monotonic_now();
        if (timers->due > now) {
            struct timespec until = { (time_t)(timers->due / 1000000000ull), (long)(timers->due % 1000000000ull) };
            pthread_cond_timedwait(&timer_changed, &timer_lock, &until);
            continue;
        }
        struct node *due = timers;
        timers = due->next;
        pthread_mutex_unlock(&timer_lock);
        push(&global_queue, due->job);
        free(due);
        pthread_mutex_lock(&timer_lock);
    }
    return NULL;
}

static void add_timer(unsigned long long due, KvmlJob *job) {
    pthread_once(&started, start_threads);
    struct node *node = make_node(job);
    node->due = due;
    pthread_mutex_lock(&timer_lock);
    struct node **link = &timers;
    while (*link && (*link)->due <= due) link = &(*link)->next;
    node->next = *link;
    *link = node;
    pthread_cond_signal(&timer_changed);
    pthread_mutex_unlock(&timer_lock);
}

static SWIFTCC void enqueue_global(KvmlJob *job, enqueue_original original) {
    (void)original;
    pthread_once(&started, start_threads);
    push(&global_queue, job);
}

static SWIFTCC void enqueue_global_delay(unsigned long long delay, KvmlJob *job, enqueue_delay_original original) {
    (void)original;
    add_timer(monotonic_now() + delay, job);
}

static SWIFTCC void enqueue_global_deadline(long long sec, long long nsec, long long tsec, long long tnsec, int clock,
                                            KvmlJob *job, enqueue_deadline_original original) {
    (void)tsec; (void)tnsec; (void)original;
    // The deadline is on the Swift clock `clock` (continuous or suspending): the time left on that clock
    // becomes a deadline on CLOCK_MONOTONIC, which the timer thread waits with.
    long long now_sec = 0, now_nsec = 0;
    swift_get_time(&now_sec, &now_nsec, clock);
    long long left = (sec - now_sec) * 1000000000ll + (nsec - now_nsec);
    add_timer(monotonic_now() + (left > 0 ? (unsigned long long)left : 0), job);
}

// libdispatch's hooks for a run loop that owns the main thread (what CoreFoundation uses): the main
// queue's wake-up descriptor (an eventfd on Linux) and the call that drains the main queue on this thread.
extern int _dispatch_get_main_queue_handle_4CF(void);
extern void _dispatch_main_queue_callback_4CF(void *message);

static SWIFTCC void drain_main(drain_original original, drain_override compat) {
    (void)original; (void)compat;
    // Main-actor jobs go to libdispatch's main queue (the main executor enqueues there itself). Instead of
    // dispatch_main(), which hands the main queue to the worker pool, the main thread waits on the queue's
    // wake-up descriptor and drains it itself, until the program exits (the async main calls exit()).
    int handle = _dispatch_get_main_queue_handle_4CF();
    for (;;) {
        struct pollfd ready = { .fd = handle, .events = POLLIN, .revents = 0 };
        if (poll(&ready, 1, -1) < 0 && errno != EINTR) abort();
        uint64_t count;
        if (ready.revents & POLLIN) (void)read(handle, &count, sizeof count);
        _dispatch_main_queue_callback_4CF(NULL);
    }
}

// The worker pool (one thread per online CPU, at least two, like the cooperative pool it replaces)
// and the timer thread, started with the first global or delayed job.
static void start_threads(void) {
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&timer_changed, &attributes);
    pthread_condattr_destroy(&attributes);
    long workers = sysconf(_SC_NPROCESSORS_ONLN);
    if (workers < 2) workers = 2;
    pthread_attr_t thread_attributes;
    pthread_attr_init(&thread_attributes);
    pthread_attr_setdetachstate(&thread_attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    if (pthread_create(&thread, &thread_attributes, timer_worker, NULL) != 0) abort();
    for (long i = 0; i < workers; i++) {
        if (pthread_create(&thread, &thread_attributes, global_worker, NULL) != 0) abort();
    }
    pthread_attr_destroy(&thread_attributes);
}

// Installed before main(), so the async main's own task already runs on the main thread here.
__attribute__((constructor)) static void install(void) {
    swift_task_enqueueGlobal_hook = enqueue_global;
    swift_task_enqueueGlobalWithDelay_hook = enqueue_global_delay;
    swift_task_enqueueGlobalWithDeadline_hook = enqueue_global_deadline;
    swift_task_asyncMainDrainQueue_hook = drain_main;
}

int kvml_quiet_executor_installed(void) {
    return swift_task_enqueueGlobal_hook == enqueue_global;
}
