/* The spawn floor of the machine, in C: WORKERS threads start PROGRAM with
 * posix_spawn (vfork, no pipes, no environment changes) until N processes
 * have run, each waited for. Nothing that spawns and waits for processes
 * one at a time per thread can beat it. Used by executor.sh:
 *     spawn_floor WORKERS N PROGRAM
 */
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;
static atomic_int next;
static int total;
static const char *program;

static void *work(void *unused) {
    (void)unused;
    char *argv[] = {(char *)program, "1", NULL};
    while (atomic_fetch_add(&next, 1) < total) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, program, NULL, NULL, argv, environ) != 0 ||
            waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "spawn_floor: %s failed\n", program);
            exit(1);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: spawn_floor WORKERS N PROGRAM\n");
        return 2;
    }
    int workers = atoi(argv[1]);
    total = atoi(argv[2]);
    program = argv[3];
    pthread_t threads[64];
    if (workers < 1 || workers > 64) return 2;
    for (int i = 0; i < workers; i++) pthread_create(&threads[i], NULL, work, NULL);
    for (int i = 0; i < workers; i++) pthread_join(threads[i], NULL);
    return 0;
}
