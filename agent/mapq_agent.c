/* placeholder until the agent module lands */
#include "mapq_err.h"
