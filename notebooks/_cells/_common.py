"""Cell sources shared by several notebooks."""

PLOT_SETUP = """\
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (6.0, 4.0), "axes.grid": True, "grid.alpha": 0.3})
pd.set_option("display.precision", 3)
pd.set_option("display.width", 120)
logging.getLogger("pymc").setLevel(logging.WARNING)  # keep PyMC's info messages out of the outputs
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto without ipywidgets
"""

#: load ML-100K's canonical u1 split, or fall back to the bundled set (a cell body)
LOAD_U1 = """\
try:
    # fast mode never downloads; a full run downloads ML-100K once if it is not on disk
    train, test = bayesmf.load_movielens("ml-100k", split="u1", download=not FAST)
    DATASET = "ML-100K, split u1"
except (FileNotFoundError, OSError) as err:
    print(f"ML-100K is not available ({err.__class__.__name__}); using the bundled ml-latest-small")
    train, test = bayesmf.train_test_split(bayesmf.load_movielens("ml-latest-small"), test_size=0.2, seed=SEED)
    DATASET = "ml-latest-small, random 80/20 split"
"""

#: fast mode: keep a random subset of users and items (a function definition, a cell body)
SHRINK = '''\
def shrink(train, test, n_users, n_items, seed):
    """Keep the ratings among random subsets of users and items (fast mode only), re-encoded."""
    rng = np.random.default_rng(seed)
    users = rng.choice(train.users.classes, size=min(n_users, train.n_users), replace=False)
    items = rng.choice(train.items.classes, size=min(n_items, train.n_items), replace=False)

    def keep(data):
        df = data.to_dataframe()
        return df[df["user"].isin(users) & df["item"].isin(items)]

    small = keep(train)
    new_train = bayesmf.RatingsData.from_dataframe(small, user="user", item="item", scale=train.scale)
    held = keep(test)
    held = held[held["user"].isin(small["user"]) & held["item"].isin(small["item"])]
    new_test = bayesmf.RatingsData.from_dataframe(
        held, user="user", item="item", scale=train.scale, users=new_train.users, items=new_train.items
    )
    return new_train, new_test
'''


def fast_subset_cell(show_test: bool = True) -> str:
    """The cell after `LOAD_U1`: define `shrink`, apply it in fast mode, print the data used."""
    body = """

if FAST:
    train, test = shrink(train, test, n_users=300, n_items=600, seed=SEED)
print(DATASET + (" (fast mode: random subset)" if FAST else ""))
print("train:", train)
"""
    return SHRINK + body + ('print("test: ", test)\n' if show_test else "")
