/*
 * Plain streams outside task hubs: for applications (and tests) that want the messages an
 * orchestration publishes with dt_publish kept durably, with JetStream's Nats-Msg-Id dedupe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_int.h"

dt_status dt_broker_stream_ensure(dt_broker *b, const char *name, const char *subject)
{
    if (name == NULL || subject == NULL || name[0] == '\0' || subject[0] == '\0') {
        return dt__broker_fail(b, DT_EINVAL, "stream ensure: name and subject are required");
    }
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, b->js, name, NULL, &jerr);
    if (s == NATS_OK) {
        bool same = si->Config->SubjectsLen == 1 && strcmp(si->Config->Subjects[0], subject) == 0;
        jsStreamInfo_Destroy(si);
        return same ? DT_OK
                    : dt__broker_fail(b, DT_ECONFLICT,
                                      "stream %s exists with other subjects than '%s'", name,
                                      subject);
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    const char *subjects[1] = {subject};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    s = js_AddStream(&si, b->js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    return s == NATS_OK ? DT_OK : dt__broker_fail_nats(b, s, jerr, "create stream %s", name);
}

dt_status dt_broker_stream_delete(dt_broker *b, const char *name)
{
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(b->js, name, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        return dt__broker_fail(b, DT_ENOTFOUND, "no stream named '%s'", name);
    }
    return s == NATS_OK ? DT_OK : dt__broker_fail_nats(b, s, jerr, "delete stream %s", name);
}

dt_status dt_broker_subject_captured(dt_broker *b, const char *subject, bool *out_captured)
{
    if (subject == NULL || subject[0] == '\0' || strlen(subject) > 1024 || out_captured == NULL) {
        return dt__broker_fail(b, DT_EINVAL, "subject captured: a subject is required");
    }
    /* The JetStream API's stream-names request filtered by subject; subjects are printable
     * ASCII without quotes or backslashes once validated by the server, so no escaping is
     * needed beyond refusing those two. */
    if (strpbrk(subject, "\"\\") != NULL) {
        return dt__broker_fail(b, DT_EINVAL, "subject captured: invalid subject");
    }
    char req[1100];
    snprintf(req, sizeof(req), "{\"subject\":\"%s\"}", subject);
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_Request(&reply, b->nc, "$JS.API.STREAM.NAMES", req,
                                          (int)strlen(req), (int64_t)b->o.request_timeout_ms);
    if (s != NATS_OK) {
        return dt__broker_fail_nats(b, s, 0, "stream names for %s", subject);
    }
    const char *data = natsMsg_GetData(reply);
    const char *total = data != NULL ? strstr(data, "\"total\":") : NULL;
    dt_status st = DT_OK;
    if (total == NULL) {
        st = dt__broker_fail(b, DT_EBROKER, "stream names for %s: unexpected reply", subject);
    } else {
        *out_captured = strtol(total + 8, NULL, 10) > 0;
    }
    natsMsg_Destroy(reply);
    return st;
}
