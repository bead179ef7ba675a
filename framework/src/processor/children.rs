//! The edges of a task's processing graph: a node that takes typed records, and the children
//! a [`ProcessorContext`](super::ProcessorContext) forwards to.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::ProcessResult;
use crate::record::Record;

/// A node that takes typed records.
pub(crate) trait Node<K, V> {
    fn process(&mut self, record: Record<K, V>) -> ProcessResult;
}

pub(crate) type NodeRef<K, V> = Rc<RefCell<dyn Node<K, V>>>;

pub(crate) struct Child<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) node: NodeRef<K, V>,
}

pub(crate) fn call<K, V>(node: &NodeRef<K, V>, record: Record<K, V>) -> ProcessResult {
    // A RefCell borrow conflict here would mean a cycle, which topology building forbids.
    node.borrow_mut().process(record)
}

pub(crate) fn new_children<K: 'static, V: 'static>(
    children: Vec<(Arc<str>, NodeRef<K, V>)>,
) -> Vec<Child<K, V>> {
    children
        .into_iter()
        .map(|(name, node)| Child { name, node })
        .collect()
}
