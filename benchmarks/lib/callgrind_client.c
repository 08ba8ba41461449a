/* Callgrind client requests for benchmarks/lib/instructions.py, loaded with ctypes.
 *
 * Built by instructions.py with the system's C compiler into the data cache (a file per
 * digest of this source).  Outside valgrind every request is a few no-op instructions.
 * The count runs from bench_start()'s return to bench_stop()'s call: the ctypes calls on
 * either side are a constant of every row.
 */
#include <valgrind/callgrind.h>

/* Zero the counters and start counting (valgrind runs with --instr-atstart=no). */
void bench_start(void)
{
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
}

/* Stop counting and write what was counted since bench_start() to a dump named `name`. */
void bench_stop(const char *name)
{
    CALLGRIND_STOP_INSTRUMENTATION;
    CALLGRIND_DUMP_STATS_AT(name);
}

/* Non-zero under valgrind (how many valgrinds deep). */
int bench_running(void)
{
    return RUNNING_ON_VALGRIND;
}
