/*
 * Result codes and small helpers shared by all of the core.
 */
#ifndef WSG_CORE_H
#define WSG_CORE_H

#define WSG_OK    0
#define WSG_ERROR (-1)
#define WSG_AGAIN (-2)

#define WSG_NELEMS(a) (sizeof(a) / sizeof((a)[0]))

#endif
