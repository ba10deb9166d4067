//! A BATCH's per-entity command against the catalog: the LU and the
//! interfaces it works on, the window variables it has only with NAME, and a
//! `pipe` program that is not there.

use super::error::{AnalyzeError, Result};
use super::interface;
use crate::ast::{Arg, CommandKind, EntityCommand};
use crate::source::Interface;
use crate::store::{CatalogStore, LuDef};

/// What a command reaches in the catalog.
#[derive(Default)]
pub(super) struct CommandNeeds {
    /// The LU a `sync_instance` / `delete_instance` works on.
    pub lu: Option<LuDef>,
    /// The interface of that LU (`sync_instance` reads it).
    pub lu_source: Option<Interface>,
    /// The interface a `sql` command runs on.
    pub interface: Option<Interface>,
}

/// An `exec` argument that names a window variable (`:from_date`...) has
/// a value only in a named batch (`WITH NAME`): in a batch without NAME it
/// is refused before anything is stored, rather than failing every
/// entity. `:bid` is the batch's id, which every batch has.
pub(super) fn refuse_window_args(cmd: &EntityCommand) -> Result<()> {
    let CommandKind::Exec { args, .. } = &cmd.kind else {
        return Ok(());
    };
    for a in args {
        if let Arg::Param(name) = a
            && !name.eq_ignore_ascii_case("bid")
        {
            return Err(AnalyzeError::invalid(
                cmd.span,
                format!(
                    ":{} is a window variable, set only for a named batch \
                     (WITH NAME='...'): add NAME to make the batch a run of a series; \
                     :bid (the batch's id) is the named parameter every batch has",
                    name.to_ascii_lowercase()
                ),
            ));
        }
    }
    Ok(())
}

/// An `exec` with `?` that also has GNU parallel's `{}` in an argument
/// (`exec 'ls' ? '{}'`): it runs, the `{}` passed as is, which is rarely
/// what was meant. The warning the statement prints once, on stderr.
pub fn literal_braces_warning(cmd: &EntityCommand) -> Option<&'static str> {
    let CommandKind::Exec { args, .. } = &cmd.kind else {
        return None;
    };
    args.iter().any(Arg::has_parallel_braces).then_some(
        "warning: exec passes {} to the program as is; the entity id is ? \
             (GNU parallel's {})",
    )
}

/// The LU and interfaces `cmd` names, looked up in the catalog.
pub(super) fn needs(catalog: &dyn CatalogStore, cmd: &EntityCommand) -> Result<CommandNeeds> {
    match &cmd.kind {
        CommandKind::SyncInstance { lu } | CommandKind::DeleteInstance { lu } => {
            let def = catalog
                .lu(&lu.text)
                .map_err(|e| AnalyzeError::at(lu.span, e))?;
            let lu_source = interface(catalog, &def.interface, lu.span)?;
            Ok(CommandNeeds {
                lu: Some(def),
                lu_source: Some(lu_source),
                interface: None,
            })
        }
        CommandKind::Sql {
            interface: name, ..
        } => Ok(CommandNeeds {
            interface: Some(interface(catalog, &name.text, name.span)?),
            ..CommandNeeds::default()
        }),
        _ => Ok(CommandNeeds::default()),
    }
}

/// A `pipe` whose program cannot be found from `workdir` (the batch's
/// working directory) is refused before anything is stored: every entity
/// would fail, each thread's process failing at start-up. A name with a
/// `/` is a path (relative ones from `workdir`), an executable file; a
/// bare name must be found in `PATH`. The arguments are the program's
/// business: a script that is not there is told by its interpreter, as
/// every entity's error.
pub fn refuse_missing_pipe_program(cmd: &EntityCommand, workdir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let CommandKind::Pipe { program, .. } = &cmd.kind else {
        return Ok(());
    };
    let why = if program.contains('/') {
        let path = workdir.join(program);
        let whose = if program.starts_with('/') {
            program.clone()
        } else {
            format!("{program} (from {})", workdir.display())
        };
        match std::fs::metadata(&path) {
            Err(e) => Some(format!("{whose}: {e}")),
            Ok(m) if !m.is_file() => Some(format!("{whose} is not a file")),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                Some(format!("{whose} is not executable (chmod +x it)"))
            }
            Ok(_) => None,
        }
    } else if crate::command::resolve_program(program).is_none() {
        Some(format!("no program named {program} in PATH"))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(AnalyzeError::invalid(
            cmd.span,
            format!("pipe cannot start its program: {why}"),
        )),
    }
}
