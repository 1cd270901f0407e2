/* placeholder */
#include "mapq_err.h"
