/*
 * Function chaining ("hello cities"): an orchestration calls activities one after another, as
 * plain sequential C. Each dt_await() either returns a result recorded in history or suspends the
 * orchestration until the result arrives. If the worker dies after the second call, another
 * worker replays the recorded results and goes on with the third: no recorded activity runs
 * again.
 *
 *   orchestration hello_cities (no input) -> ["Hello Tokyo!","Hello Seattle!","Hello London!"]
 *   activity      say_hello "Tokyo"       -> "Hello Tokyo!"
 *
 * Alone: dt-samples chaining, or dtctl start hello_cities, then dtctl wait <id>.
 */
#include <stdio.h>
#include <string.h>

#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

static void say_hello(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    char city[64];
    if (!sjson_unquote(dt_activity_input(ctx, NULL), city, sizeof(city))) {
        dt_activity_fail(ctx, "sample.BadInput", "expected a city name as a JSON string", true);
        return;
    }
    sample_activity_output(ctx, "\"Hello %s!\"", city);
}

static void hello_cities(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    static const char *const cities[] = {"\"Tokyo\"", "\"Seattle\"", "\"London\""};
    const char *greetings[3];
    for (size_t i = 0; i < 3; i++) {
        dt_task *t = dt_call_activity(ctx, "say_hello", cities[i], strlen(cities[i]), NULL);
        greetings[i] = dt_await(ctx, t, NULL); /* suspends until the result is in */
    }
    sample_orch_output(ctx, "[%s,%s,%s]", greetings[0], greetings[1], greetings[2]);
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "hello_cities", hello_cities, NULL);
    return st != DT_OK ? st : dt_worker_add_activity(w, "say_hello", NULL, say_hello, NULL);
}

static bool run(sample_run *r)
{
    char id[DT_CLIENT_ID_BUF];
    sample_id(r, "chaining", 1, id);
    return sample_start(r, "hello_cities", id, NULL) &&
           sample_check(r, id, "[\"Hello Tokyo!\",\"Hello Seattle!\",\"Hello London!\"]");
}

const sample sample_chaining = {.name = "chaining",
                                .title = "hello cities: three activities called in sequence",
                                .add = add,
                                .run = run};
