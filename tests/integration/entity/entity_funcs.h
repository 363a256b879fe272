/*
 * entity_funcs.h: the entities of the entity tests (a counter), shared by the in-process tests and
 * the worker process entity_worker.
 */
#ifndef DT_ENTITY_FUNCS_H
#define DT_ENTITY_FUNCS_H

#include "durabletask/entity.h"

/*
 * "counter": state is a decimal number. Operations: add <n> (default 1), get (result: the
 * state), reset (deletes the state), fill <n> (a state of n bytes 'x'), fail (adds 1000, then
 * fails: rolled back).
 */
void ef_counter(dt_entity_ctx *ctx, void *ud);

/*
 * "account": state is a decimal balance. Operations: deposit <n>, withdraw <n> (fails, leaving the
 * balance, when it would go below 0), balance (result: the balance, "0" when none).
 */
void ef_account(dt_entity_ctx *ctx, void *ud);

#endif
