// The modkit C++ SDK: include this (and <modkit/sdk/torch.hpp> for LibTorch helpers) to write a plugin.
#pragma once

#include <modkit/modkit.h>
#include <modkit/sdk/calibrating_modifier.hpp>
#include <modkit/sdk/error.hpp>
#include <modkit/sdk/export.hpp>
#include <modkit/sdk/modifier.hpp>
#include <modkit/sdk/params.hpp>
#include <modkit/sdk/well_known.hpp>
