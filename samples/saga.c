/*
 * Saga (compensation): a business transaction made of steps that each commit on their own (book
 * a flight, a hotel, a car). When a step fails, the steps already done are undone by compensating
 * activities, in reverse order. dt_try_await() catches the failure instead of failing the
 * orchestration; history records every booking and every compensation, so a crash in the middle
 * of compensating resumes where it stopped.
 *
 *   orchestration book_trip {"trip":"T1"}
 *       -> {"trip":"T1","booked":true,"confirmations":["FLIGHT-T1","HOTEL-T1","CAR-T1"]}
 *   orchestration book_trip {"trip":"T2","unavailable":"car"}
 *       -> {"trip":"T2","booked":false,"error":"no car available for T2",
 *           "compensated":["HOTEL-T2","FLIGHT-T2"]}
 *   activities    book_flight, book_hotel, book_car -> a confirmation;
 *                 cancel_flight, cancel_hotel, cancel_car (input: the confirmation)
 *
 * Alone: dt-samples saga, or dtctl start book_trip --input '{"trip":"T3","unavailable":"hotel"}'.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "sample_client.h"
#include "sample_json.h"
#include "sample_out.h"
#include "samples.h"

typedef struct step {
    const char *what;   /* also the activities' user data */
    const char *book;   /* activity that does the step */
    const char *cancel; /* activity that undoes it */
} step;

static const step steps[] = {
    {"flight", "book_flight", "cancel_flight"},
    {"hotel", "book_hotel", "cancel_hotel"},
    {"car", "book_car", "cancel_car"},
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

/* book_<what>: fails (non-retriable) when the trip says <what> is unavailable. */
static void book(dt_activity_ctx *ctx, void *user_data)
{
    const char *what = user_data;
    const char *in = dt_activity_input(ctx, NULL);
    char trip[64] = "?", unavailable[32] = "";
    sjson_str(in, "trip", trip, sizeof(trip));
    sjson_str(in, "unavailable", unavailable, sizeof(unavailable));
    if (strcmp(unavailable, what) == 0) {
        char why[128];
        snprintf(why, sizeof(why), "no %s available for %s", what, trip);
        dt_activity_fail(ctx, "trip.Unavailable", why, true);
        return;
    }
    char upper[16] = "";
    for (size_t i = 0; what[i] != '\0' && i + 1 < sizeof(upper); i++) {
        upper[i] = (char)toupper((unsigned char)what[i]);
    }
    sample_activity_output(ctx, "\"%s-%s\"", upper, trip); /* the confirmation */
}

/* cancel_<what>: undoes a booking given its confirmation; idempotent in a real system. */
static void cancel(dt_activity_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const void *confirmation = dt_activity_input(ctx, &len);
    dt_activity_set_output(ctx, confirmation, len);
}

/* Appends `s` (a JSON value) to a JSON array being built in out. */
static void append(char *out, size_t size, const char *s)
{
    size_t used = strlen(out);
    snprintf(out + used, size - used, "%s%s", out[used - 1] == '[' ? "" : ",", s);
}

static void book_trip(dt_orch_ctx *ctx, void *user_data)
{
    (void)user_data;
    size_t len = 0;
    const char *in = dt_orch_input(ctx, &len);
    char trip[64] = "?";
    sjson_str(in, "trip", trip, sizeof(trip));
    const char *done[NSTEPS];
    size_t ndone = 0;
    const dt_failure *failure = NULL;
    while (ndone < NSTEPS && failure == NULL) {
        dt_task *t = dt_call_activity(ctx, steps[ndone].book, in, len, NULL);
        if (dt_try_await(ctx, t) == DT_OK) {
            done[ndone++] = dt_task_output(t, NULL);
        } else {
            failure = dt_task_failure(t);
        }
    }
    char list[512] = "[";
    if (failure == NULL) {
        for (size_t i = 0; i < NSTEPS; i++) {
            append(list, sizeof(list), done[i]);
        }
        sample_orch_output(ctx, "{\"trip\":\"%s\",\"booked\":true,\"confirmations\":%s]}", trip,
                           list);
        return;
    }
    for (size_t i = ndone; i-- > 0;) { /* compensate in reverse order */
        const char *c = done[i];
        dt_await(ctx, dt_call_activity(ctx, steps[i].cancel, c, strlen(c), NULL), NULL);
        append(list, sizeof(list), c);
    }
    sample_orch_output(ctx,
                       "{\"trip\":\"%s\",\"booked\":false,\"error\":\"%s\",\"compensated\":%s]}",
                       trip, failure->message, list);
}

static dt_status add(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "book_trip", book_trip, NULL);
    for (size_t i = 0; i < NSTEPS && st == DT_OK; i++) {
        void *what = (void *)steps[i].what;
        st = dt_worker_add_activity(w, steps[i].book, NULL, book, what);
        if (st == DT_OK) {
            st = dt_worker_add_activity(w, steps[i].cancel, NULL, cancel, what);
        }
    }
    return st;
}

/* Two trips: one books everything; for the other no car is available. */
static bool run(sample_run *r)
{
    char ok_id[DT_CLIENT_ID_BUF], bad_id[DT_CLIENT_ID_BUF];
    char in[DT_CLIENT_ID_BUF + 64], want[4 * DT_CLIENT_ID_BUF + 128];
    sample_id(r, "saga", 1, ok_id);
    sample_id(r, "saga", 2, bad_id);
    snprintf(in, sizeof(in), "{\"trip\":\"%s\"}", ok_id);
    if (!sample_start(r, "book_trip", ok_id, in)) {
        return false;
    }
    snprintf(in, sizeof(in), "{\"trip\":\"%s\",\"unavailable\":\"car\"}", bad_id);
    if (!sample_start(r, "book_trip", bad_id, in)) {
        return false;
    }
    snprintf(want, sizeof(want),
             "{\"trip\":\"%s\",\"booked\":true,\"confirmations\":"
             "[\"FLIGHT-%s\",\"HOTEL-%s\",\"CAR-%s\"]}",
             ok_id, ok_id, ok_id, ok_id);
    bool ok = sample_check(r, ok_id, want);
    snprintf(want, sizeof(want),
             "{\"trip\":\"%s\",\"booked\":false,\"error\":\"no car available for %s\","
             "\"compensated\":[\"HOTEL-%s\",\"FLIGHT-%s\"]}",
             bad_id, bad_id, bad_id, bad_id);
    return sample_check(r, bad_id, want) && ok;
}

const sample sample_saga = {.name = "saga",
                            .title =
                                "a failed booking compensated by cancellations in reverse order",
                            .add = add,
                            .run = run};
