#ifndef REFUNDENGINE_CLZ4_SHIM_H
#define REFUNDENGINE_CLZ4_SHIM_H
#include <lz4.h>
#endif
