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

/* A printf-like function: argument fmt_index is the format, checked against the arguments from
 * first_arg on (-Wformat). */
#if defined(__GNUC__) || defined(__clang__)
#define DT_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define DT_PRINTF(fmt_index, first_arg)
#endif

#endif
