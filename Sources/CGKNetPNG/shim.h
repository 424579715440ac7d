#pragma once
#include <png.h>
#include "gk_png.h"
