/* CHECK(cond) for the C test drivers: on failure, print the file, line and condition to stderr and
 * return 1 from the calling function. */
#ifndef EMBER_TEST_DRIVER_CHECK_H_
#define EMBER_TEST_DRIVER_CHECK_H_

#include <stdio.h>

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                                   \
    }                                                                             \
  } while (0)

#endif /* EMBER_TEST_DRIVER_CHECK_H_ */
