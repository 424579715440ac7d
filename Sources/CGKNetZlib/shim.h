#pragma once
// zlib, for the parallel PNG writer of Harmonization (HarmonizeJobPNG.swift).
#include <zlib.h>
