/*
 * durabletask/defs.h: the macros that let the public headers compile alone, as C11 and as C++.
 *
 * DT_API marks every function of the public API. The library is built with hidden visibility
 * (-fvisibility=hidden), so in the shared library libdurabletask.so exactly the DT_API functions
 * are exported; the internal ones (dt__ and the module-private dt_ functions) are not. DT_NORETURN
 * and DT_PRINTF stand for C11's _Noreturn and GCC's format attribute, which C++ spells otherwise
 * or not at all. (C linkage in C++ is each header's own extern "C" block.)
 *
 * Layer: none; included by every public header, includes nothing.
 */
#ifndef DURABLETASK_DEFS_H
#define DURABLETASK_DEFS_H

#if defined(__GNUC__) || defined(__clang__)
#define DT_API __attribute__((visibility("default")))
#else
#define DT_API
#endif

/* A function that never returns to its caller. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define DT_NORETURN [[noreturn]]
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define DT_NORETURN _Noreturn
#elif defined(__GNUC__) || defined(__clang__)
#define DT_NORETURN __attribute__((noreturn))
#else
#define DT_NORETURN
#endif

/*
 * The rule for every options struct of the API (dt_worker_options, dt_client_options,
 * dt_client_hub_info, dt_client_start_options, dt_client_filter, dt_nats_security,
 * dt_activity_options, dt_sub_orch_options, dt_retry_policy):
 *  - zero means the default for every field (dt_retry_policy excepted: it is a value, and its
 *    _init gives a valid one);
 *  - each has an _init that sets the defaults and struct_size;
 *  - its first member is `size_t struct_size`, the size of the struct as the caller's header
 *    declared it. Fields are only ever appended, so a library reads a caller's older, smaller
 *    struct safely: the fields the caller's header did not have take their defaults. 0 (a
 *    struct zeroed or set with designated initialisers instead of _init) stands for the layout
 *    of release 0.x that introduced struct_size. A struct larger than the library knows (a newer
 *    header) is accepted when the fields it does not know are zero, else refused with
 *    DT_EVERSION. A struct embedded in another (dt_nats_security in the worker's and client's
 *    options) is read as part of it.
 */

/* A printf-like function: argument fmt_index is the format, checked against the arguments from
 * first_arg on (-Wformat). */
#if defined(__GNUC__) || defined(__clang__)
#define DT_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define DT_PRINTF(fmt_index, first_arg)
#endif

#endif
