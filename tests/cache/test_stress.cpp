// Load: eight threads create, drive and destroy plugin modifiers from one registry while another refreshes it.
#include "cache_test_support.hpp"
#include "recording_host.hpp"

#include <modkit/core/event.hpp>
#include <modkit/core/factory.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <thread>

using namespace modkit::test;

namespace {

// What one modifier's life logs: created with start 0 and end 2, sent BATCH_START and BATCH_END at steps 1..3.
const std::vector<std::string> kLife = {
    "on_initialize", "on_start@0",                                              // initialize: the fake start at 0
    "on_event@1",    "on_update@1", "on_event@1", "on_update@1",                // step 1, inside [start, end)
    "on_event@2",    "on_update@2", "on_event@2", "on_end@2",   "on_update@2",  // BATCH_END at 2 ends it
    "on_event@3",    "on_event@3",                                              // after the end: events only
    "on_finalize"};

// Creates, drives and destroys one modifier; "" or what went wrong.
std::string one_life(const modkit::ModifierFactory& f, const std::string& tag) {
  RecordingHost host;
  modkit::State state = host.state();
  auto m = f.create("RecorderModifier", true, false, {{"start", 0}, {"end", 2}, {"tag", tag}});
  m->initialize(state);
  for (int64_t step = 1; step <= 3; ++step) {
    m->update_event(state, modkit::Event{modkit::EventType::BatchStart, step});
    m->update_event(state, modkit::Event{modkit::EventType::BatchEnd, step});
  }
  m->finalize(state);
  m.reset();
  std::vector<std::string> expected;
  for (const auto& line : kLife) expected.push_back(tag + line);
  if (host.lines() != expected) {
    std::string got;
    for (const auto& line : host.lines()) got += line + " ";
    return "modifier '" + tag + "' logged: " + got;
  }
  return "";
}

}  // namespace

TEST_CASE("eight threads create, drive and destroy modifiers while another thread refreshes the registry") {
  TempDir tmp;
  const std::string plugins = tmp / "plugins";
  const std::string recorder = copy_plugin(kCachePlugins + "/cache_recorder.so", plugins + "/recorder.so");
  // rescanned by every refresh (its mtime moves), so refreshes really scan and rewrite the cache
  const std::string churn = copy_plugin(kGood, plugins + "/churn.so");
  modkit::ModifierFactory f(cached(plugins, tmp / "cache"));
  f.refresh();
  REQUIRE(one_life(f, "warm-up:") == "");

  constexpr int kThreads = 8;
  constexpr int kLives = 100;      // per thread, at least
  constexpr int kRefreshes = 10;   // at least, and until every thread is done
  std::atomic<int> refreshes{0}, finished{0};
  std::mutex mutex;
  std::vector<std::string> problems;
  auto report = [&](const std::string& problem) {
    std::lock_guard<std::mutex> lock(mutex);
    problems.push_back(problem);
  };

  // no sleeps and no deadlines: each side goes on until the other has done its share,
  // so the refreshes overlap the lives whatever the scheduler does
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < kLives || refreshes.load() < kRefreshes; ++i) {
          if (std::string p = one_life(f, "t" + std::to_string(t) + "." + std::to_string(i) + ":"); !p.empty()) {
            report(p);
          }
          if (!f.find("RecorderModifier").has_value()) report("RecorderModifier left the registry");
        }
      } catch (const std::exception& e) {
        report(std::string("thread ") + std::to_string(t) + ": " + e.what());
      }
      ++finished;
    });
  }
  std::thread refresher([&] {
    try {
      for (int r = 0; r < kRefreshes || finished.load() < kThreads; ++r) {
        set_mtime(churn, kPast + 1 + r);
        f.refresh();
        ++refreshes;
      }
    } catch (const std::exception& e) {
      report(std::string("refresh: ") + e.what());
    }
  });
  for (auto& t : threads) t.join();
  refresher.join();

  for (const auto& p : problems) CHECK_MESSAGE(false, p);
  CHECK(problems.empty());
  CHECK(refreshes.load() >= kRefreshes);
  CHECK(f.errors().empty());
  CHECK(f.records().size() == 3);  // recorder.so's two types and churn.so's one
  // the library stayed loaded through every refresh, and stays after the factory is gone
  CHECK(loaded_here(recorder));
  auto survivor = f.create("RecorderModifier", true, false, {{"tag", "survivor:"}});
  {
    modkit::ModifierFactory other(cached(plugins, tmp / "cache"));
    other.refresh();
    CHECK(one_life(other, "other:") == "");
  }
  RecordingHost host;
  auto state = host.state();
  survivor->initialize(state);
  survivor->finalize(state);
  CHECK(host.lines().back() == "survivor:on_finalize");
}
