/*
 * Plain streams outside task hubs: for applications (and tests) that want the messages an
 * orchestration publishes with dt_publish kept durably, with JetStream's Nats-Msg-Id dedupe.
 */
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
