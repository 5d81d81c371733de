/// @file gating.hpp
/// Everything gating code (britney) needs, in one include: britney's state,
/// collecting results, request sinks and verdicts.
#pragma once

#include "autopkgtest_cloud/britney_state.hpp"
#include "autopkgtest_cloud/collect.hpp"
#include "autopkgtest_cloud/sinks.hpp"
#include "autopkgtest_cloud/verdicts.hpp"
