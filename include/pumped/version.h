/*
 * pumped/version.h: the library's release version.
 *
 * Kept equal to AC_INIT's version in configure.ac (a unit test checks it).
 */
#ifndef PUMPED_VERSION_H
#define PUMPED_VERSION_H

#define PF_VERSION_MAJOR 0
#define PF_VERSION_MINOR 1
#define PF_VERSION_PATCH 0
#define PF_VERSION_STRING "0.1.0"
/* (major << 16) | (minor << 8) | patch, for compile-time comparisons. */
#define PF_VERSION_HEX \
	((PF_VERSION_MAJOR << 16) | (PF_VERSION_MINOR << 8) | PF_VERSION_PATCH)

#endif /* PUMPED_VERSION_H */
