/* dt_nats_security_from_env (durabletask/connection.h): the DT_NATS_* variables that dtctl, the
 * samples and applications share, so that one environment configures every tool alike. */
#include <stdlib.h>

#include "durabletask/connection.h"

static void from_env(const char **field, const char *name)
{
    if (*field == NULL) {
        const char *v = getenv(name);
        *field = v != NULL && v[0] != '\0' ? v : NULL;
    }
}

void dt_nats_security_from_env(dt_nats_security *s)
{
    from_env(&s->creds_file, "DT_NATS_CREDS");
    from_env(&s->nkey_seed_file, "DT_NATS_NKEY");
    from_env(&s->token, "DT_NATS_TOKEN");
    from_env(&s->user, "DT_NATS_USER");
    from_env(&s->password, "DT_NATS_PASSWORD");
    from_env(&s->tls_ca_file, "DT_NATS_CA");
    from_env(&s->tls_cert_file, "DT_NATS_CERT");
    from_env(&s->tls_key_file, "DT_NATS_KEY");
}
