use crate::source::resolve_path;
use std::path::{Path, PathBuf};

#[test]
fn relative_path_is_joined_and_dots_removed() {
    assert_eq!(
        resolve_path("../x/./y.db", Path::new("/a/b")),
        PathBuf::from("/a/x/y.db")
    );
}

#[test]
fn absolute_path_ignores_cwd_but_is_normalized() {
    assert_eq!(
        resolve_path("/data/./in/../crm.db", Path::new("/home/u")),
        PathBuf::from("/data/crm.db")
    );
}

#[test]
fn parent_of_root_is_root() {
    assert_eq!(
        resolve_path("../../../x.csv", Path::new("/a")),
        PathBuf::from("/x.csv")
    );
}

#[test]
fn plain_name_lands_in_cwd() {
    assert_eq!(
        resolve_path("ids.csv", Path::new("/w")),
        PathBuf::from("/w/ids.csv")
    );
    assert_eq!(resolve_path(".", Path::new("/w")), PathBuf::from("/w"));
}
