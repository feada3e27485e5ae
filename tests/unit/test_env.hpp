// Helpers for unit tests that touch the file system, the environment or stderr: each undoes
// what it did when it goes out of scope, so tests stay independent of each other and of the
// machine's own settings.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "util/errors.hpp"

namespace workq::test {

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
  public:
    TempDir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "workq-unit-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

    // Writes `text` to `name` (a relative path, parent directories created); returns its path.
    std::filesystem::path write(const std::string& name, const std::string& text) const {
        auto file = path_ / name;
        std::filesystem::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << text;
        return file;
    }

  private:
    std::filesystem::path path_;
};

// Sets (or, with nullopt, unsets) an environment variable for the rest of the scope, then puts
// back what was there before.
class EnvVar {
  public:
    EnvVar(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str())) old_ = old;
        set(value);
    }
    ~EnvVar() { set(old_); }
    EnvVar(const EnvVar&) = delete;
    EnvVar& operator=(const EnvVar&) = delete;

    void set(const std::optional<std::string>& value) const {
        if (value)
            ::setenv(name_.c_str(), value->c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }

  private:
    std::string name_;
    std::optional<std::string> old_;
};

// Sends everything written to fd 2 into a temporary file until text() is called or the scope
// ends. Writes through the fd itself (as workq's logging does) are caught exactly.
class CaptureStderr {
  public:
    CaptureStderr() {
        std::fflush(stderr);
        file_ = std::tmpfile();
        if (file_ == nullptr) throw std::runtime_error("tmpfile failed");
        saved_ = ::dup(STDERR_FILENO);
        ::dup2(::fileno(file_), STDERR_FILENO);
    }
    ~CaptureStderr() {
        restore();
        if (file_ != nullptr) std::fclose(file_);
    }
    CaptureStderr(const CaptureStderr&) = delete;
    CaptureStderr& operator=(const CaptureStderr&) = delete;

    // Stops capturing and returns what was written.
    std::string text() {
        restore();
        std::string out;
        std::rewind(file_);
        char buffer[4096];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file_)) > 0;)
            out.append(buffer, n);
        return out;
    }

  private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }

    std::FILE* file_ = nullptr;
    int saved_ = -1;
};

// True when `haystack` holds `needle`.
inline bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// The UsageError message `action` throws; fails the test when it throws nothing.
template <typename Action>
std::string usage_error(Action action) {
    try {
        action();
        ADD_FAILURE() << "no UsageError";
    } catch (const UsageError& error) {
        return error.what();
    }
    return "";
}

}  // namespace workq::test
