# PF_CHECK_C11_ATOMICS
# --------------------
# Compiles and links a program using 64-bit C11 atomics (load, store,
# fetch_add, compare_exchange) and fences.  Some targets need -latomic for
# the 64-bit operations; try without it first, then with it.  Fails with a
# clear message when neither works.
AC_DEFUN([PF_CHECK_C11_ATOMICS], [
  AC_CACHE_CHECK([for C11 <stdatomic.h> with 64-bit atomics], [pf_cv_c11_atomics], [
    pf_cv_c11_atomics=no
    m4_define([pf_atomics_prog], [AC_LANG_PROGRAM([[
#include <stdatomic.h>
#include <stdint.h>
static _Atomic(int64_t) x;
static _Atomic(uint64_t) y;
]], [[
  int64_t e = 0;
  atomic_store_explicit(&x, 1, memory_order_release);
  atomic_fetch_add_explicit(&y, 2, memory_order_relaxed);
  atomic_thread_fence(memory_order_seq_cst);
  if (!atomic_compare_exchange_strong_explicit(&x, &e, 3,
      memory_order_seq_cst, memory_order_relaxed))
    e = atomic_load_explicit(&x, memory_order_acquire);
  return (int)(e + (int64_t)atomic_load_explicit(&y, memory_order_relaxed)) == 42;
]])])
    AC_LINK_IFELSE([pf_atomics_prog], [pf_cv_c11_atomics=yes], [
      pf_save_LIBS=$LIBS
      LIBS="$LIBS -latomic"
      AC_LINK_IFELSE([pf_atomics_prog], [pf_cv_c11_atomics=-latomic])
      LIBS=$pf_save_LIBS
    ])
  ])
  AS_CASE([$pf_cv_c11_atomics],
    [yes], [],
    [-latomic], [LIBS="$LIBS -latomic"],
    [AC_MSG_ERROR([libpumped needs a C11 compiler with <stdatomic.h> and 64-bit atomics (gcc >= 4.9 or clang >= 3.6).])])
])
