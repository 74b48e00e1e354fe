"""The corpus size in every test run's summary, so that CI's log shows how many bad inputs were tried."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from bad_input_cases import CASES

    ran = [report for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
           + terminalreporter.stats.get("skipped", []) if "test_bad_input_is_one_line_and_exit_2[" in report.nodeid]
    if ran:
        passed = sum(report.passed for report in ran)
        skipped = sum(report.skipped for report in ran)
        terminalreporter.write_line(f"bad-input corpus: {len(CASES)} cases; {passed} passed (exit 2, one line naming "
                                    f"the problem, no traceback, nothing written), {skipped} not applicable here, "
                                    f"{len(ran) - passed - skipped} failed")
