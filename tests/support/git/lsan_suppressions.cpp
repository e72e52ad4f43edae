// LeakSanitizer suppressions and ASan options, compiled into every binary that links
// capstan::testing_git (an INTERFACE source). libgit2 1.5 as Debian ships it keeps PCRE2 match data
// and some libssh2 and transport buffers until exit; those leaks are not Capstan's and would fail
// every sanitizer run. The patterns match any frame of a leak's stack, so they also hide leaks of
// objects allocated inside these calls; keep the list to what a sanitizer run actually reports.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libpcre2-8.so\n"
         "leak:libssh2.so\n"
         "leak:git_remote_connect_ext\n";
}

// Full stacks for allocations (libgit2 is built without frame pointers), so the patterns above
// see the library frames they name instead of one shallow frame.
extern "C" const char* __asan_default_options() {
  return "fast_unwind_on_malloc=0";
}
