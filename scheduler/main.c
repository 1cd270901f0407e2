#include "mapq_err.h"

int
main(void)
{
    return MAPQ_OK;
}
