/*
 * Dead letters: a message the worker cannot use goes to dt.<hub>.dead.<kind> with the reason and
 * where it came from, and leaves its stream. The body is kept for inspection, cut to what fits
 * beside the headers (a message refused for its size would otherwise be refused again as a dead
 * letter); Dt-Truncated then gives its full length.
 */
#include <stdio.h>
#include <string.h>

#include "protocol_int.h"
#include "worker_int.h"

#define DEAD_HEADROOM 4096 /* headers of a dead letter */

void dt__worker_dead_letter(dt_worker *w, const char *who, const dt__dead_letter_info *d)
{
    char subject[DT_BROKER_NAME_BUF], full[32];
    size_t len = d->len;
    int64_t max = dt_broker_max_payload(w->broker);
    if (max > DEAD_HEADROOM && len > (size_t)(max - DEAD_HEADROOM)) {
        len = (size_t)(max - DEAD_HEADROOM);
    }
    snprintf(full, sizeof(full), "%zu", d->len);
    /* No empty header values: header parsers of some clients do not cope with them. */
    dt_broker_header h[4];
    size_t nh = 0;
    h[nh++] = (dt_broker_header){DT_HDR_REASON, d->reason};
    h[nh++] = (dt_broker_header){DT_HDR_ORIGINAL_SUBJECT,
                                 d->orig_subject != NULL ? d->orig_subject : "-"};
    if (len < d->len) {
        h[nh++] = (dt_broker_header){"Dt-Truncated", full};
    }
    if (d->instance_id != NULL && d->instance_id[0] != '\0') {
        h[nh++] = (dt_broker_header){DT_HDR_INSTANCE_ID, d->instance_id};
    }
    dt_broker_outmsg m = {
        .subject = subject, .headers = h, .nheaders = nh, .data = d->data, .len = len};
    dt_status st =
        dt_broker_subject(w->hub, DT_BROKER_SUBJ_DEAD, d->kind, subject, sizeof(subject));
    if (st == DT_OK) {
        st = dt_broker_publish(w->broker, &m, NULL);
    }
    dt__worker_log(w, DT_LOG_WARN, d->instance_id, "%s: dead letter (%s): %s%s%s", who, d->kind,
                   d->reason, st == DT_OK ? "" : "; could not publish it: ",
                   st == DT_OK ? "" : dt_broker_errmsg(w->broker));
}
