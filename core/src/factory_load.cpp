// How refresh() learns about each plugin file: path safety, the registry cache, the scanner child, then this process.
#include "elf.hpp"
#include "lazy_plugin.hpp"
#include "loaded_libraries.hpp"
#include "path_safety.hpp"
#include "registry_cache.hpp"
#include "scanner.hpp"
#include <modkit/core/factory.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>
#include <unistd.h>

namespace modkit {
namespace {

// A file refused before any of its code ran: one record per *Modifier name
// its symbol table lists (read without loading it), or one file-level record.
detail::FileOutcome refused(const std::string& path, bool experimental, LoadStage stage, const std::string& reason) {
  detail::FileOutcome out;
  out.records = detail::refusal_records(path, experimental, stage, reason);
  for (const auto& r : out.records) spdlog::warn("{}", r.message());
  return out;
}

// Whether a fresh outcome may be reused by later processes. A failure to
// open depends on more than the file (its dependencies, LD_LIBRARY_PATH) and
// a scanner that failed says nothing about the file: both are tried again.
bool cacheable(const std::vector<LoadRecord>& records) {
  for (const auto& r : records) {
    if (r.stage == LoadStage::Open) return false;
  }
  return true;
}

detail::CachedFile cache_entry(const PluginFile& file, const detail::FileStamp& stamp,
                               const detail::FileOutcome& outcome) {
  detail::CachedFile c;
  c.path = file.path;
  c.experimental = file.experimental;
  c.stamp = stamp;
  c.records = outcome.records;
  std::vector<ModifierInfo> types;
  for (const auto& type : outcome.types) types.push_back(type->info());  // scanned now: known, never encoded
  c.types = detail::CachedTypes(std::move(types));
  return c;
}

}  // namespace

std::vector<detail::FileOutcome> ModifierFactory::load_files(const std::vector<PluginFile>& files) const {
  auto host = detail::HostFingerprint::current();
  host.torch_version = options_.host_torch_version;
  // taken before any stamp: a file changed after this instant has a newer mtime
  const int64_t started = detail::file_clock_now_ns();
  const size_t n = files.size();
  std::vector<detail::FileOutcome> out(n);
  std::vector<char> done(n, 0), fresh(n, 0);
  std::vector<std::string> resolved(n);  // "" unless a symlink leads elsewhere
  std::vector<std::optional<detail::FileStamp>> stamps(n);

  // 1. who could have written this code? (no plugin code runs; never cached:
  // a mode or owner can change without changing the file)
  const uid_t uid = ::geteuid();
  detail::PathMemo memo;
  for (size_t i = 0; i < n; ++i) {
    detail::PluginPath path =
        detail::examine_plugin_path(files[i].path, files[i].dir, uid, !options_.allow_unsafe_paths, memo);
    if (path.moved) resolved[i] = std::move(path.resolved);
    stamps[i] = path.stamp;
    if (!path.unsafe.empty()) {
      out[i] = refused(files[i].path, files[i].experimental, LoadStage::Scan, path.unsafe);
      done[i] = 1;
    }
  }

  // 2. the registry cache: unchanged files are known without running anything
  const auto snapshot = cache_ ? cache_->snapshot() : nullptr;
  for (size_t i = 0; i < n; ++i) {
    if (done[i] || !snapshot || !stamps[i]) continue;
    if (auto hit = detail::RegistryCache::lookup(*snapshot, files[i].path, files[i].experimental, *stamps[i])) {
      out[i] = detail::outcome_of_cache(hit, stamps[i], host);
      done[i] = 1;
    }
  }

  // 3. loaded in this process earlier and unchanged (the cache is off, or
  // could not be written)
  for (size_t i = 0; i < n; ++i) {
    if (done[i] || !stamps[i]) continue;
    if (auto load = detail::LoadedLibraries::instance().find(files[i].path, files[i].experimental, *stamps[i], host)) {
      out[i] = detail::outcome_of_load(*load, files[i].path, files[i].experimental, stamps[i], host,
                                       RecordSource::Memory);
      done[i] = 1;
    }
  }

  // 4. the scanner child loads and validates the rest; the host loads a file
  // only when a modifier from it is created
  if (options_.isolation == Isolation::Subprocess) {
    std::vector<size_t> pending;
    for (size_t i = 0; i < n; ++i) {
      if (!done[i]) pending.push_back(i);
    }
    const std::string scanner = pending.empty() ? "" : detail::find_plugin_scanner(options_.scanner_path);
    if (!pending.empty() && scanner.empty()) {
      spdlog::warn("no plugin scanner found ({}); loading plugins in this process without crash isolation",
                   options_.scanner_path.empty() ? "set MODKIT_PLUGIN_SCANNER or install modkit-plugin-scanner"
                                                 : "'" + options_.scanner_path + "' is not an executable file");
    } else if (!pending.empty()) {
      // a few children side by side for long lists (each child loads its
      // share sequentially); contiguous shares keep each child's work local
      const size_t hw = std::max(1u, std::thread::hardware_concurrency());
      const size_t workers = std::max<size_t>(1, std::min({pending.size() / 32, hw, size_t{4}}));
      std::vector<std::vector<detail::ScanResult>> results(workers);
      std::vector<std::string> failures(workers);
      auto share = [&](size_t w) {
        const size_t begin = pending.size() * w / workers, end = pending.size() * (w + 1) / workers;
        std::vector<detail::ScanRequest> requests;
        for (size_t k = begin; k < end; ++k) requests.push_back({files[pending[k]].path, files[pending[k]].experimental});
        try {
          results[w] = detail::scan_in_subprocess(scanner, requests, host.torch_version, options_.scan_timeout);
        } catch (const std::exception& e) {
          failures[w] = e.what();
        }
      };
      std::vector<std::thread> threads;
      for (size_t w = 1; w < workers; ++w) threads.emplace_back(share, w);
      share(0);
      for (auto& t : threads) t.join();
      for (size_t w = 0; w < workers; ++w) {
        if (!failures[w].empty()) {
          spdlog::warn("{}; loading plugins in this process without crash isolation", failures[w]);
          continue;
        }
        const size_t begin = pending.size() * w / workers;
        for (size_t k = 0; k < results[w].size(); ++k) {
          const size_t i = pending[begin + k];
          auto& result = results[w][k];
          if (!result.complete) {
            out[i] = refused(files[i].path, files[i].experimental, LoadStage::Isolated, result.failure);
            fresh[i] = result.scanner_failed ? 0 : 1;
          } else {
            for (const auto& r : result.records) {
              if (!r.ok()) spdlog::warn("{}", r.message());
            }
            out[i] = detail::outcome_of_scan(std::move(result.records), std::move(result.types), files[i].path,
                                             files[i].experimental, stamps[i], host);
            fresh[i] = 1;
          }
          done[i] = 1;
        }
      }
    }
  }

  // 5. load in this process what is left (everything new, InProcess)
  for (size_t i = 0; i < n; ++i) {
    if (done[i]) continue;
    const auto load = detail::LoadedLibraries::instance().load(files[i].path, files[i].experimental, stamps[i], host);
    out[i] = detail::outcome_of_load(load, files[i].path, files[i].experimental, stamps[i], host, RecordSource::Scan);
    fresh[i] = 1;
  }

  // 6. keep for later processes what was learnt afresh, once the file has settled
  if (cache_) {
    std::vector<detail::CachedFile> entries;
    for (size_t i = 0; i < n; ++i) {
      if (fresh[i] && stamps[i] && detail::settled(*stamps[i], started) && cacheable(out[i].records)) {
        entries.push_back(cache_entry(files[i], *stamps[i], out[i]));
      }
    }
    cache_->update(std::move(entries));
  }

  // keep the real location where a symlink leads elsewhere (a relative path alone is not news)
  for (size_t i = 0; i < n; ++i) {
    if (resolved[i].empty()) continue;
    for (auto& r : out[i].decoded_records()) r.resolved = resolved[i];
  }
  return out;
}

}  // namespace modkit
