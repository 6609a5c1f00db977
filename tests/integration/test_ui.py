"""The Airflow UI as a person uses it, in a real browser: Playwright driving Debian's Chromium.

What each test expects comes from the DAG files (their assets, schedules and params) or from the
REST API (an asset event this module caused), never from a table of its own. Each test saves what it
saw as a PNG: into ``$UI_SCREENSHOTS_DIR`` when set (``make screenshots`` sets it to ``docs/``),
otherwise into a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DAG
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from scripts.stack.config import ADMIN_USER, REPO
from scripts.stack.launcher import LocalStack
from tests.asset_graph import declared_graph
from tests.integration.chain import events_since, wait_until_idle

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections (updates, sync, field trials)
# get refused many at a time on a machine with no internet, and pages load slowly.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Wide enough for an asset event's batch id on one line of the event's JSON viewer.
VIEWPORT = {"width": 1600, "height": 1080}
UI_TIMEOUT_MS = 30_000  # a page of the UI on a busy 2-core machine


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("UI_SCREENSHOTS_DIR")
    if not folder:
        return tmp_path_factory.mktemp("screenshots")
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)


@pytest.fixture(scope="module")
def dags() -> dict[str, DAG]:
    """The pipeline's DAGs as their files declare them."""
    bag = DagBag(dag_folder=REPO / "dags", safe_mode=False)
    assert bag.import_errors == {}
    return bag.dags


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"the UI tests need Debian's `chromium` package at {CHROMIUM}; `make browser` installs it"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def signed_in(browser: Browser, stack: LocalStack) -> Iterator[BrowserContext]:
    """A browser session logged in through the UI's login form as the stack's admin."""
    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = browser.new_context(base_url=stack.config.api_url, viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(f"{stack.config.api_url}/auth/login?next=%2F")
    page.get_by_label("Username").fill(ADMIN_USER)
    page.get_by_label("Password").fill(stack.config.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Assets")).to_be_visible()
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(signed_in: BrowserContext) -> Iterator[Page]:
    page = signed_in.new_page()
    yield page
    page.close()


def popover_names(page: Page, cell) -> set[str]:
    """The names listed by the button in a table ``cell`` ("1 Task", "2 Tasks")."""
    cell.get_by_role("button").click()
    popover = page.get_by_role("dialog")
    expect(popover).to_be_visible()
    names = {line.strip() for line in popover.inner_text().splitlines() if line.strip()}
    # Pressed on the popover itself, which Playwright first waits to be stable: an Escape sent to the
    # page while the popover was still opening was once lost, and the popover stayed open.
    popover.press("Escape")
    expect(popover).to_be_hidden()
    return names


def test_assets_view_links_each_asset_from_its_producer_to_its_consumers(
    page: Page, dags: dict[str, DAG], screenshots: Path
):
    graph = declared_graph(dags)
    page.goto("/assets")
    expect(page.get_by_role("heading", name=f"{len(graph)} Assets")).to_be_visible()

    # The list: every asset with the tasks that produce it.
    producing = page.locator("thead th").all_inner_texts().index("Producing Tasks")
    shown = {
        row.locator("td").first.inner_text().strip(): popover_names(page, row.locator("td").nth(producing))
        for row in page.locator("tbody tr").all()
    }
    assert shown == {name: asset["producers"] for name, asset in graph.items()}

    # An asset's page draws the chain it belongs to: producer DAG -> asset -> consumer DAG.
    page.get_by_role("link", name=sorted(graph)[0], exact=True).click()
    edges = {(task.split(".")[0], name) for name, asset in graph.items() for task in asset["producers"]}
    edges |= {(name, dag_id) for name, asset in graph.items() for dag_id in asset["consumers"]}
    expect(page.locator(".react-flow__edge")).to_have_count(len(edges))
    nodes = page.locator(".react-flow__node")
    expect(nodes).to_have_count(len({node for edge in edges for node in edge}))
    label = {node.get_attribute("data-id"): node.inner_text().strip() for node in nodes.all()}
    drawn = set()
    for edge in page.locator(".react-flow__edge").all():
        source, target = edge.get_attribute("aria-label").removeprefix("Edge from ").split(" to ")
        drawn.add((label[source], label[target]))
    assert drawn == edges

    # Top to bottom, the whole chain fits the panel at a readable size.
    page.get_by_role("button", name="Options").click()
    page.get_by_role("combobox", name="Graph Direction").click()
    page.get_by_role("option", name="Top to Bottom").click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Fit View").click()
    page.mouse.move(0, 0)
    expect(page.get_by_role("tooltip")).to_have_count(0)
    page.screenshot(path=screenshots / "ui-assets.png")


@pytest.fixture(scope="module")
def landed_event(stack: LocalStack, wait_for) -> Iterator[dict]:
    """The raw_batches event of a batch this module publishes at the stack's data source. A bad batch:
    it lands like any other, and etl quarantines it instead of starting a training and a deploy that
    nothing here looks at. Its etl run is seen through before the module ends: the stack is left
    idle, as found."""
    since = datetime.now(UTC)
    stack.publish(kind="bad", seed=71)

    def landed() -> dict | None:
        return next(
            (
                event
                for event in events_since(stack, "raw_batches", since)
                if any(b["source"]["url"] == stack.config.crawl_url for b in event["extra"]["batches"])
            ),
            None,
        )

    yield wait_for(landed, 120, "the raw_batches event of the batch published for the UI")
    wait_until_idle(stack, wait_for)


def test_raw_batches_event_shows_its_metadata(page: Page, landed_event: dict, screenshots: Path):
    page.goto("/assets")
    page.get_by_role("link", name="raw_batches", exact=True).click()
    card = (
        page.get_by_test_id("card-list")
        .locator(":scope > div")
        .filter(has=page.locator(f'time[datetime="{landed_event["timestamp"]}"]'))
    )
    expect(card).to_contain_text(landed_event["source_dag_id"])

    # The metadata is shown folded, as "{ ... }": open it, then its batch_ids.
    card.locator(".codicon-folding-collapsed").click()
    card.locator(".view-line", has_text='"batch_ids"').click()
    page.keyboard.press("Control+Shift+BracketRight")  # the JSON viewer's "unfold"
    for batch_id in landed_event["extra"]["batch_ids"]:
        expect(card.locator(".view-lines")).to_contain_text(f'"{batch_id}"')
    expect(card.locator(".view-lines")).to_contain_text(f'"rows":\u00a0{landed_event["extra"]["rows"]}')
    page.mouse.move(0, 0)
    # The asset's details and the event, right of the graph.
    graph, event = page.locator(".react-flow").bounding_box(), card.bounding_box()
    left = graph["x"] + graph["width"]
    bottom = event["y"] + event["height"] + 16
    page.screenshot(
        path=screenshots / "ui-raw-batches-event.png",
        clip={"x": left, "y": 0, "width": VIEWPORT["width"] - left, "height": bottom},
    )


def test_trigger_form_of_etl_shows_its_params_with_their_descriptions(
    page: Page, dags: dict[str, DAG], screenshots: Path
):
    params = dags["etl"].params
    # The form labels a field with the param's title, or its name when it has none.
    declared = {}
    for name in params:
        param = params.get_param(name)
        declared[param.schema.get("title", name)] = param.description
    page.goto("/dags/etl")
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    expect(form.get_by_role("heading", name="Trigger Dag - etl")).to_be_visible()

    run_parameters = form.locator("[data-part=item]").filter(
        has=page.get_by_role("button", name="Run Parameters")
    )
    fields = run_parameters.locator("[data-scope=field][data-part=root]")
    expect(fields).to_have_count(len(declared))
    shown = {
        field.locator("label").inner_text().removesuffix("*").strip(): field.locator(
            "[data-part=helper-text]"
        ).inner_text()
        for field in fields.all()
    }
    assert shown == declared
    page.screenshot(path=screenshots / "ui-trigger-etl.png")


@pytest.fixture(scope="module")
def registered_run(stack: LocalStack, wait_for) -> dict:
    """A train_validate run whose `register` succeeded and whose report is written: the newest one, or
    one this module causes by publishing a good batch."""

    def newest() -> dict | None:
        for run in stack.rest.dag_runs("train_validate"):
            states = {
                ti["task_id"]: ti["state"]
                for ti in stack.rest.task_instances("train_validate", run["dag_run_id"])
            }
            if states.get("write_report") == "success":
                return run
        return None

    if newest() is None:
        wait_until_idle(stack, wait_for)
        stack.publish(seed=41)
    return wait_for(newest, 240, "a train_validate run that registered a model and wrote its report")


def test_the_register_task_links_to_the_models_report(
    page: Page, stack: LocalStack, registered_run: dict, screenshots: Path
):
    run_id = registered_run["dag_run_id"]
    links = stack.rest.get(f"/api/v2/dags/train_validate/dagRuns/{run_id}/taskInstances/register/links")[
        "extra_links"
    ]
    url = links["Model report"]
    assert url.startswith(f"{stack.config.model_server_url}/models/")

    page.goto(f"/dags/train_validate/runs/{run_id}/tasks/register/details")  # extra links: Details tab
    link = page.get_by_role("link", name="Model report")
    expect(link).to_be_visible()
    assert link.get_attribute("href") == url
    page.screenshot(path=screenshots / "ui-model-report-link.png")

    with page.context.expect_page() as opened:
        link.click(modifiers=["Control"])  # a new tab, whatever the link's target
    report = opened.value
    report.wait_for_load_state()
    expect(report.get_by_role("heading", name="Verdict")).to_be_visible()
    expect(report.get_by_role("heading", name="Which columns matter")).to_be_visible()
    report.set_viewport_size({"width": 1100, "height": 1400})
    report.screenshot(path=screenshots / "ui-model-report.png")
    report.close()
